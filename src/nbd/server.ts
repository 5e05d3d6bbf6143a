// NBD server: the protocol layer between NBD clients (qemu, nbdcopy, nbdinfo, fio, the kernel's
// nbd-client) and an ExportProvider. It owns sockets, the fixed newstyle handshake, request
// checking and reply framing; it never knows what backs an export (see export.ts).
//
// Spoken: fixed newstyle only (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES); options EXPORT_NAME,
// GO, INFO (NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE always, NAME/DESCRIPTION when asked), LIST,
// ABORT; STARTTLS, STRUCTURED_REPLY and anything else get NBD_REP_ERR_UNSUP. Simple replies only.
// Commands READ, WRITE, FLUSH, TRIM (if the export can), WRITE_ZEROES (NO_HOLE accepted), DISC;
// FUA on any command. CAN_MULTI_CONN only when the export says flush covers every connection; a
// read-only export gets READ_ONLY and no SEND_TRIM / SEND_WRITE_ZEROES.
//
// Limits (constants.ts LIMITS): READ/WRITE payload <= maxPayloadBytes (default 32 MiB, advertised
// as the maximum block size; min 1, preferred 4096); option data <= 64 KiB and <= 1024 options per
// connection (else hard disconnect); handshake within handshakeTimeoutMs (default 10 s, else
// closed); <= 128 requests in flight and <= 64 MiB of queued replies per connection before the
// server stops reading that socket; maxConnections admitted at once (default 128). A connection
// over the limit still gets the greeting, then every option is answered NBD_REP_ERR_POLICY
// "connection limit reached" (clients print it) and NBD_OPT_EXPORT_NAME is closed; at most 16
// such connections wait at once, further ones are closed right after accept.
//
// Request errors (checked before the export sees anything; the connection stays open):
//   unknown command, unknown or inapplicable flag, zero length      -> EINVAL
//   READ or TRIM past or straddling the end                         -> EINVAL
//   READ or WRITE longer than maxPayloadBytes                       -> EINVAL (a write's payload
//                                                                      is read and discarded)
//   WRITE or WRITE_ZEROES past the end                              -> ENOSPC (payload consumed)
//   WRITE, WRITE_ZEROES or TRIM on a read-only export               -> EPERM
//   TRIM on an export that cannot trim; FLUSH with offset/length    -> EINVAL
//   bad request magic                                               -> connection closed
// Errors thrown by an export: code (or string errno) EPERM/EROFS/EACCES -> EPERM, EINVAL -> EINVAL,
// ENOSPC/EDQUOT/EFBIG -> ENOSPC, anything else -> EIO. A request cut short by a disconnect is
// dropped, never passed on. Export calls happen in arrival order on each connection.

import net from 'node:net';
import { LIMITS } from './constants.js';
import type { ExportProvider } from './export.js';
import { HandshakeSession } from './handshake.js';
import { Transmission } from './transmission.js';

export interface NbdServerOptions {
  provider: ExportProvider;
  listen?: { host: string; port: number };
  socketPath?: string;
  maxConnections?: number;
  /** Largest READ/WRITE payload (default 32 MiB). */
  maxPayloadBytes?: number;
  /** Default 10 s. */
  handshakeTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface NbdServer {
  address(): { host: string; port: number } | { path: string };
  /**
   * Stops accepting connections. graceful (the default): connections still in the handshake are
   * closed, connections in transmission stop reading requests, answer those in flight, then end.
   * Otherwise every socket is destroyed at once. Resolves once every export has been closed.
   */
  close(opts?: { graceful: boolean }): Promise<void>;
  /** Connections admitted (handshake or transmission), not counting refused ones. */
  connections(): number;
}

interface ConnectionConfig {
  readonly provider: ExportProvider;
  readonly maxPayloadBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly log: (msg: string) => void;
}

class Connection {
  private phase: 'handshake' | 'transmission' = 'handshake';
  private readonly session: HandshakeSession;
  private transmission: Transmission | null = null;
  private socketClosed = false;
  private clientEnded = false;
  private readonly timer: NodeJS.Timeout;
  private readonly label: string;
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: net.Socket,
    private readonly config: ConnectionConfig,
    refusal: string | null,
  ) {
    this.label = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix socket client';
    socket.setNoDelay(true);
    this.session = new HandshakeSession({
      provider: config.provider,
      maxPayloadBytes: config.maxPayloadBytes,
      refusal,
      send: (buf) => {
        if (!socket.destroyed && !socket.writableEnded) socket.write(buf);
      },
      log: config.log,
    });
    this.timer = setTimeout(() => {
      config.log(`nbd: ${this.label}: handshake not finished within ${config.handshakeTimeoutMs} ms, closing`);
      socket.destroy();
    }, config.handshakeTimeoutMs);
    this.timer.unref();

    const socketGone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      if (this.phase === 'transmission') {
        this.transmission!.push(chunk);
      } else {
        this.session.push(chunk);
        if (this.session.overflowing) {
          config.log(`nbd: ${this.label}: client sent more handshake data than allowed, closing`);
          socket.destroy();
        }
      }
    });
    socket.on('end', () => {
      this.clientEnded = true;
      if (this.transmission) this.transmission.clientEnded();
      else this.session.end();
    });
    socket.on('error', (err) => config.log(`nbd: ${this.label}: socket error: ${err.message}`));
    socket.on('close', () => {
      this.socketClosed = true;
      clearTimeout(this.timer);
      if (this.transmission) this.transmission.socketClosed();
      else this.session.end();
    });

    const exportClosed = this.session.run().then(
      async (outcome) => {
        if (outcome.kind === 'close') {
          this.endSocket();
          return;
        }
        clearTimeout(this.timer);
        const transmission = new Transmission(socket, outcome.export, {
          maxPayloadBytes: config.maxPayloadBytes,
          log: config.log,
          label: this.label,
        });
        this.transmission = transmission;
        this.phase = 'transmission';
        if (outcome.leftover.length > 0) transmission.push(outcome.leftover);
        if (this.socketClosed) transmission.socketClosed();
        else if (this.clientEnded) transmission.clientEnded();
        await transmission.closed;
      },
      (err: unknown) => {
        config.log(`nbd: ${this.label}: handshake failed: ${err instanceof Error ? err.stack : String(err)}`);
        socket.destroy();
      },
    );
    this.closed = Promise.all([socketGone, exportClosed]).then(() => undefined);
  }

  /** Graceful: a handshake is cut off; a transmission answers what is in flight, then ends. */
  shutdown(graceful: boolean): void {
    if (graceful && this.transmission) this.transmission.drain();
    else this.socket.destroy();
  }

  private endSocket(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.end();
    setTimeout(() => socket.destroy(), LIMITS.lingerMs).unref();
  }
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`startNbdServer: ${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

export async function startNbdServer(opts: NbdServerOptions): Promise<NbdServer> {
  const log = opts.log ?? (() => {});
  const maxPayloadBytes = checkInteger(
    'maxPayloadBytes',
    opts.maxPayloadBytes ?? LIMITS.payloadBytesMaxDefault,
    LIMITS.payloadBytesMaxLowest,
    LIMITS.payloadBytesMaxHighest,
  );
  const handshakeTimeoutMs = checkInteger('handshakeTimeoutMs', opts.handshakeTimeoutMs ?? LIMITS.handshakeTimeoutMsDefault, 1, 3_600_000);
  const maxConnections = checkInteger('maxConnections', opts.maxConnections ?? LIMITS.connectionsMaxDefault, 1, 65_536);
  if (opts.listen && opts.socketPath) throw new RangeError('startNbdServer: give listen or socketPath, not both');
  const config: ConnectionConfig = { provider: opts.provider, maxPayloadBytes, handshakeTimeoutMs, log };

  const admitted = new Set<Connection>();
  const refused = new Set<Connection>();
  let closing = false;

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    if (admitted.size < maxConnections) {
      const conn = new Connection(socket, config, null);
      admitted.add(conn);
      void conn.closed.then(() => admitted.delete(conn));
      return;
    }
    if (refused.size >= LIMITS.refusedConnectionsMax) {
      log(`nbd: connection limit of ${maxConnections} reached, dropping a new connection`);
      socket.destroy();
      return;
    }
    log(`nbd: connection limit of ${maxConnections} reached, refusing a new connection in the handshake`);
    const conn = new Connection(socket, config, `rewind NBD server: connection limit of ${maxConnections} reached, try again later`);
    refused.add(conn);
    void conn.closed.then(() => refused.delete(conn));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      server.on('error', (err) => log(`nbd: server error: ${err.message}`));
      resolve();
    };
    if (opts.socketPath) server.listen(opts.socketPath, done);
    else {
      const { host, port } = opts.listen ?? { host: '127.0.0.1', port: 10809 };
      server.listen(port, host, done);
    }
  });

  let closePromise: Promise<void> | null = null;
  return {
    address() {
      const addr = server.address();
      if (addr === null) throw new Error('NBD server is not listening');
      if (typeof addr === 'string') return { path: addr };
      return { host: addr.address, port: addr.port };
    },
    connections: () => admitted.size,
    close(closeOpts) {
      if (closePromise) return closePromise;
      closing = true;
      const graceful = closeOpts?.graceful ?? true;
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      const all = [...admitted, ...refused];
      for (const conn of all) conn.shutdown(graceful);
      closePromise = Promise.all([serverClosed, ...all.map((c) => c.closed)]).then(() => undefined);
      return closePromise;
    },
  };
}

export type { ExportProvider, NbdExport } from './export.js';
