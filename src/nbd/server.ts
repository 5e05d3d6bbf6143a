// NBD server: the protocol layer between NBD clients (qemu, nbdcopy, nbdinfo, fio, the kernel's
// nbd-client) and an ExportProvider. It owns sockets, the fixed newstyle handshake, request
// checking and reply framing; it never knows what backs an export (see export.ts).
//
// Spoken: fixed newstyle only (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES); options EXPORT_NAME,
// GO, INFO (NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE always, NAME/DESCRIPTION when asked), LIST,
// ABORT, STARTTLS when `tls` is given, STRUCTURED_REPLY, LIST_META_CONTEXT and SET_META_CONTEXT
// (meta-context.ts: `base:allocation` for every export, other namespaces the provider's); anything
// else gets NBD_REP_ERR_UNSUP. Simple replies, except reads and block status once structured
// replies are negotiated (transmission.ts).
//
// TLS (opts.tls): NBD_OPT_STARTTLS is answered NBD_REP_ACK and the socket is upgraded in place (a
// tls.Server that never listens runs the server side: TLS 1.2 or later, client certificates checked
// against `ca` when requireClientCert); option haggling continues over TLS. required: true is
// FORCEDTLS (handshake.ts): before TLS, every option but STARTTLS/ABORT gets NBD_REP_ERR_TLS_REQD
// and NBD_OPT_EXPORT_NAME closes the connection. Without opts.tls, STARTTLS gets NBD_REP_ERR_UNSUP.
//
// Reads: plain connections read into one reusable buffer each (socket-reads.ts, NBD_LIMITS.readBufferBytes),
// TLS-capable listeners through Node's 'data' events.
// Commands READ, WRITE, FLUSH, TRIM (if the export can), WRITE_ZEROES (NO_HOLE accepted), DISC,
// BLOCK_STATUS (REQ_ONE accepted; block-status.ts) with a metadata context selected; FUA on any command. CAN_MULTI_CONN only when the export says flush covers every connection; a
// read-only export gets READ_ONLY and no SEND_TRIM / SEND_WRITE_ZEROES.
//
// Limits (constants.ts NBD_LIMITS): READ/WRITE payload <= maxPayloadBytes (default 64 MiB, for every
// client however it negotiated); advertised block sizes min 1, preferred 4096, maximum
// min(maxPayloadBytes, 32 MiB); option data <= 64 KiB and <= 1024 options per connection (else
// hard disconnect); handshake within handshakeTimeoutMs (default 10 s, else closed); <= 128
// requests in flight and <= 16 MiB of replies owed across the server, an equal share per admitted
// connection (each passed by at most one reply)
// before the server stops reading that socket; maxConnections admitted at once (default 128). A connection
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
//   BLOCK_STATUS without a selected context, empty or past the end  -> EINVAL
//   bad request magic                                               -> connection closed
// Errors thrown by an export: code (or string errno) EPERM/EROFS/EACCES -> EPERM, EINVAL -> EINVAL,
// ENOSPC/EDQUOT/EFBIG -> ENOSPC, anything else -> EIO. A request cut short by a disconnect is
// dropped, never passed on. Export calls happen in arrival order on each connection.

import net from 'node:net';
import tls from 'node:tls';
import { badArgument, closed as closedError } from '../errors.js';
import { NBD_LIMITS } from './constants.js';
import type { ExportProvider } from './export.js';
import { HandshakeSession } from './handshake.js';
import { adoptWithReadBuffer } from './socket-reads.js';
import { Transmission } from './transmission.js';

export interface NbdTlsOptions {
  /** PEM certificate chain of the server. */
  cert: Buffer | string;
  /** PEM private key of the server. */
  key: Buffer | string;
  /** PEM CA certificate(s) that client certificates must chain to (default: Node's bundled CAs). */
  ca?: Buffer | string | (Buffer | string)[];
  /** Refuse the TLS handshake unless the client presents a certificate signed by `ca`. */
  requireClientCert?: boolean;
  /** true: FORCEDTLS, nothing but NBD_OPT_STARTTLS and NBD_OPT_ABORT before TLS. false: TLS offered. */
  required: boolean;
}

export interface NbdServerOptions {
  provider: ExportProvider;
  listen?: { host: string; port: number };
  socketPath?: string;
  maxConnections?: number;
  /** Largest READ/WRITE payload accepted (default 64 MiB); the maximum block size advertised is at most 32 MiB. */
  maxPayloadBytes?: number;
  /** Default 10 s. */
  handshakeTimeoutMs?: number;
  /** NBD_OPT_STARTTLS with these credentials; without it the server is NOTLS (STARTTLS: NBD_REP_ERR_UNSUP). */
  tls?: NbdTlsOptions;
  /**
   * How plain connections are read: 'buffer' (the default) into one reusable buffer per connection
   * (socket-reads.ts), falling back to 'stream' where that is not possible; 'stream': Node's
   * 'data' events. TLS listeners always use 'stream'.
   */
  readPath?: 'buffer' | 'stream';
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
  /** Admitted connections so far by how they were read (see NbdServerOptions.readPath). */
  readPaths(): { buffer: number; stream: number };
}

interface ConnectionConfig {
  readonly provider: ExportProvider;
  readonly maxPayloadBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly log: (msg: string) => void;
  readonly tls: { readonly options: NbdTlsOptions; readonly server: () => tls.Server } | null;
  readonly readBuffer: boolean;
  /** Reply bytes one connection may owe now: its share of NBD_LIMITS.serverReplyBytesMax. */
  readonly replyBytesMax: () => number;
}

class Connection {
  private phase: 'handshake' | 'transmission' = 'handshake';
  private readonly session: HandshakeSession;
  private transmission: Transmission | null = null;
  /** The socket the protocol runs over: the accepted one, or its TLS upgrade after STARTTLS. */
  private socket: net.Socket;
  private upgrading = false;
  private socketClosed = false;
  private clientEnded = false;
  private readonly timer: NodeJS.Timeout;
  private readonly label: string;
  private resolveGone!: () => void;
  readonly readPath: 'buffer' | 'stream';
  readonly closed: Promise<void>;

  constructor(
    accepted: net.Socket,
    private readonly config: ConnectionConfig,
    refusal: string | null,
  ) {
    // Accepted paused (pauseOnConnect): nothing has been read yet, so the handle can move.
    let socket: net.Socket | null = null;
    if (config.readBuffer && config.tls === null && refusal === null) {
      socket = adoptWithReadBuffer(accepted, Buffer.allocUnsafeSlow(NBD_LIMITS.readBufferBytes), (chunk) => this.onChunk(chunk, true));
    }
    this.readPath = socket ? 'buffer' : 'stream';
    if (!socket) {
      socket = accepted;
      socket.on('data', this.onData);
      socket.resume();
    }
    this.socket = socket;
    this.label = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix socket client';
    socket.setNoDelay(true);
    this.session = new HandshakeSession({
      provider: config.provider,
      maxPayloadBytes: config.maxPayloadBytes,
      refusal,
      send: (buf) => {
        const s = this.socket;
        if (!s.destroyed && !s.writableEnded) s.write(buf);
      },
      log: config.log,
      tls: config.tls === null ? 'off' : config.tls.options.required ? 'required' : 'optional',
      startTls: () => this.startTls(),
    });
    this.timer = setTimeout(() => {
      config.log(`nbd: ${this.label}: handshake not finished within ${config.handshakeTimeoutMs} ms, closing`);
      this.socket.destroy();
    }, config.handshakeTimeoutMs);
    this.timer.unref();

    const socketGone = new Promise<void>((resolve) => (this.resolveGone = resolve));
    this.listen(socket);

    const exportClosed = this.session.run().then(
      async (outcome) => {
        if (outcome.kind === 'close') {
          this.endSocket();
          return;
        }
        clearTimeout(this.timer);
        const transmission = new Transmission(this.socket, outcome.export, {
          maxPayloadBytes: config.maxPayloadBytes,
          log: config.log,
          label: this.label,
          negotiated: outcome.negotiated,
          replyBytesMax: config.replyBytesMax,
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
        this.socket.destroy();
      },
    );
    this.closed = Promise.all([socketGone, exportClosed]).then(() => undefined);
  }

  private readonly onData = (chunk: Buffer): void => this.onChunk(chunk, false);

  /** volatile: the chunk is a view into a buffer reused by the next read. */
  private onChunk(chunk: Buffer, volatile: boolean): void {
    if (this.phase === 'transmission') {
      this.transmission!.push(chunk, volatile);
    } else {
      this.session.push(volatile ? Buffer.from(chunk) : chunk);
      if (this.session.overflowing) {
        this.config.log(`nbd: ${this.label}: client sent more handshake data than allowed, closing`);
        this.socket.destroy();
      }
    }
  }

  private readonly onEnd = (): void => {
    this.clientEnded = true;
    if (this.transmission) this.transmission.clientEnded();
    else this.session.end();
  };

  private readonly onClose = (): void => {
    if (this.socketClosed) return;
    this.socketClosed = true;
    clearTimeout(this.timer);
    if (this.transmission) this.transmission.socketClosed();
    else this.session.end();
    this.resolveGone();
  };

  private listen(socket: net.Socket): void {
    socket.on('end', this.onEnd);
    socket.on('error', (err) => this.config.log(`nbd: ${this.label}: socket error: ${err.message}`));
    socket.on('close', this.onClose);
  }

  /**
   * NBD_OPT_STARTTLS was acknowledged: from the next byte on, the connection speaks TLS. A tls.Server
   * (never listening) runs the server side of the handshake, including client certificate checks.
   */
  private startTls(): void {
    const raw = this.socket;
    const tlsConfig = this.config.tls!;
    raw.off('data', this.onData);
    raw.off('end', this.onEnd);
    this.upgrading = true;
    const server = tlsConfig.server();
    server.once('secureConnection', (secure: tls.TLSSocket) => {
      this.upgrading = false;
      if (this.socketClosed) {
        secure.destroy();
        return;
      }
      this.socket = secure;
      secure.on('data', this.onData);
      this.listen(secure);
    });
    server.once('tlsClientError', (err: Error) => {
      this.config.log(`nbd: ${this.label}: TLS handshake failed: ${err.message}`);
      raw.destroy();
    });
    raw.once('close', () => {
      if (this.upgrading) this.config.log(`nbd: ${this.label}: connection closed during the TLS handshake`);
    });
    server.emit('connection', raw);
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
    setTimeout(() => socket.destroy(), NBD_LIMITS.lingerMs).unref();
  }
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw badArgument(`startNbdServer: ${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

export async function startNbdServer(opts: NbdServerOptions): Promise<NbdServer> {
  const log = opts.log ?? (() => {});
  const maxPayloadBytes = checkInteger(
    'maxPayloadBytes',
    opts.maxPayloadBytes ?? NBD_LIMITS.payloadBytesMaxDefault,
    NBD_LIMITS.payloadBytesMaxLowest,
    NBD_LIMITS.payloadBytesMaxHighest,
  );
  const handshakeTimeoutMs = checkInteger('handshakeTimeoutMs', opts.handshakeTimeoutMs ?? NBD_LIMITS.handshakeTimeoutMsDefault, 1, 3_600_000);
  const maxConnections = checkInteger('maxConnections', opts.maxConnections ?? NBD_LIMITS.connectionsMaxDefault, 1, 65_536);
  if (opts.listen && opts.socketPath) throw badArgument('startNbdServer: give listen or socketPath, not both');
  let tlsConfig: ConnectionConfig['tls'] = null;
  if (opts.tls) {
    const t = opts.tls;
    const serverOptions: tls.TlsOptions = {
      cert: t.cert,
      key: t.key,
      ca: t.ca,
      minVersion: 'TLSv1.2',
      requestCert: t.requireClientCert === true,
      rejectUnauthorized: t.requireClientCert === true,
      handshakeTimeout: handshakeTimeoutMs,
      allowHalfOpen: true,
    };
    // Fails here, at start, on a bad certificate or key (and on a key that does not match).
    tls.createSecureContext(serverOptions);
    tlsConfig = { options: t, server: () => tls.createServer(serverOptions) };
  }
  const admitted = new Set<Connection>();
  const replyBytesMax = () => Math.min(NBD_LIMITS.replyQueueBytesMax, Math.floor(NBD_LIMITS.serverReplyBytesMax / Math.max(1, admitted.size)));
  const config: ConnectionConfig = { provider: opts.provider, maxPayloadBytes, handshakeTimeoutMs, log, tls: tlsConfig, readBuffer: (opts.readPath ?? 'buffer') === 'buffer', replyBytesMax };
  const readPaths = { buffer: 0, stream: 0 };

  const refused = new Set<Connection>();
  let closing = false;

  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    if (admitted.size < maxConnections) {
      const conn = new Connection(socket, config, null);
      readPaths[conn.readPath]++;
      admitted.add(conn);
      void conn.closed.then(() => admitted.delete(conn));
      return;
    }
    if (refused.size >= NBD_LIMITS.refusedConnectionsMax) {
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
      // Null only once close() has stopped the listener.
      if (addr === null) throw closedError('NBD server');
      if (typeof addr === 'string') return { path: addr };
      return { host: addr.address, port: addr.port };
    },
    connections: () => admitted.size,
    readPaths: () => ({ ...readPaths }),
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
