// Reading a connection into one reusable buffer instead of a new Buffer per socket read.
//
// By default Node allocates a fresh 64 KiB Buffer for every read of a socket; at 64 KiB NBD writes
// that is one allocation (and, at this rate, an mmap/brk churn) per request plus a read split across
// requests. net.Socket's documented `onread` option ({ buffer, callback }) makes libuv read straight
// into a buffer the caller owns, as much as fits per read. net.Server cannot pass `onread` to the
// sockets it accepts, so adoptWithReadBuffer() moves an accepted socket's handle into a new
// net.Socket created with `onread`. That needs the accepted socket's `_handle` (a private field):
// this function is the only place that touches it. The server must be created with
// `pauseOnConnect: true` so nothing has been read from the handle yet. If the handle does not look
// as expected (another Node version), it returns null and the caller keeps the accepted socket and
// its ordinary 'data' events; both paths deliver the same bytes (test/nbd/perf-path.test.ts).
//
// The chunk passed to onChunk is a view into the reused buffer: valid only until onChunk returns.
// Whoever keeps bytes past that must copy them (the request parser does; exports copy a write's
// payload before write() returns, see export.ts).

import net from 'node:net';

interface HandleHolder {
  _handle?: unknown;
}

function looksLikeStreamHandle(handle: unknown): handle is object {
  if (handle === null || typeof handle !== 'object') return false;
  const h = handle as { readStart?: unknown; readStop?: unknown; useUserBuffer?: unknown };
  return typeof h.readStart === 'function' && typeof h.readStop === 'function' && typeof h.useUserBuffer === 'function';
}

/**
 * A socket that reads `accepted`'s connection into `buffer` and hands each read to onChunk, or null
 * (nothing changed: keep using `accepted`). On success `accepted` is destroyed without closing the
 * connection, so net.Server stops counting it; the returned socket owns the connection.
 */
export function adoptWithReadBuffer(accepted: net.Socket, buffer: Buffer, onChunk: (chunk: Buffer) => void): net.Socket | null {
  const holder = accepted as unknown as HandleHolder;
  const handle = holder._handle;
  if (!looksLikeStreamHandle(handle) || accepted.destroyed || accepted.readableLength > 0 || accepted.isPaused() === false) return null;
  let adopted: net.Socket;
  try {
    adopted = new net.Socket({
      handle,
      allowHalfOpen: accepted.allowHalfOpen,
      readable: true,
      writable: true,
      onread: { buffer, callback: (nread: number, buf: Uint8Array) => void onChunk((buf as Buffer).subarray(0, nread)) },
    } as net.SocketConstructorOpts & { handle: unknown });
  } catch {
    return null;
  }
  holder._handle = null;
  accepted.destroy();
  return adopted;
}
