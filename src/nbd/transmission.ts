// Transmission phase of one connection: checks every request before it reaches the export
// (request-check.ts), calls the export in the order requests arrived, and sends replies (in
// completion order, which proto.md allows), corked so one event-loop turn's replies leave in one
// writev. Replies are simple unless structured replies were negotiated: then a read is answered
// with one OFFSET_DATA chunk (or an ERROR chunk), a block status with one BLOCK_STATUS chunk per
// selected metadata context (or an ERROR chunk), everything else still with simple replies (which
// proto.md allows for replies without payload).
//
// Per-connection bounds, checked before each request (the parser holds the rest of a socket read
// until they clear): NBD_LIMITS.requestsInFlightMax requests in flight, and the connection's share of
// NBD_LIMITS.serverReplyBytesMax (options.replyBytesMax) in bytes of replies owed (reads in flight
// plus replies queued on the socket). A reply is never refused for its size, so the bytes owed pass the bound by at most one
// reply. Reading resumes below half of both.

import type { Socket } from 'node:net';
import {
  CMD_BLOCK_STATUS,
  CMD_DISC,
  CMD_FLAG_FUA,
  CMD_FLAG_REQ_ONE,
  CMD_FLUSH,
  CMD_READ,
  CMD_TRIM,
  CMD_WRITE,
  CMD_WRITE_ZEROES,
  NBD_LIMITS,
  NBD_EINVAL,
  NBD_EIO,
} from './constants.js';
import { RewindError } from '../errors.js';
import { blockStatus, type ContextStatus } from './block-status.js';
import { nbdErrorFor, type NbdExport } from './export.js';
import type { Negotiated } from './handshake.js';
import { blockStatusChunk, errorChunk, offsetDataHeader, simpleReply } from './replies.js';
import { checkRequest } from './request-check.js';
import { RequestParser, type RequestHeader, type RequestSink } from './request-parser.js';

const ERROR_NAMES: Record<number, string> = { 1: 'EPERM', 5: 'EIO', 22: 'EINVAL', 28: 'ENOSPC' };

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

export interface TransmissionOptions {
  readonly maxPayloadBytes: number;
  readonly log: (msg: string) => void;
  readonly label: string;
  /** Structured replies and metadata contexts (none: simple replies only). */
  readonly negotiated?: Negotiated;
  /** Reply bytes this connection may owe before it stops reading requests, now (default NBD_LIMITS.replyQueueBytesMax). */
  readonly replyBytesMax?: () => number;
}

export class Transmission implements RequestSink {
  private readonly parser = new RequestParser(this);
  private inFlight = 0;
  /** Payload bytes of reads the export has not answered yet. */
  private readBytesInFlight = 0;
  private corked = false;
  private paused = false;
  /** No more requests will be read; the connection ends once in-flight requests are answered. */
  private draining = false;
  private exportClosed = false;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly exp: NbdExport,
    private readonly options: TransmissionOptions,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    socket.on('drain', () => this.maybeResume());
  }

  /** Resolves once the export is closed (every request settled, the socket ended or gone). */
  get closed(): Promise<void> {
    return this.done;
  }

  /** volatile: the chunk is a view into a read buffer reused once push() returns. */
  push(chunk: Buffer, volatile = false): void {
    if (this.draining) return;
    if (!this.corked) this.cork();
    this.parser.push(chunk, volatile);
    // The chunk's last request may have reached a bound: stop the socket before the next read.
    this.saturated();
  }

  /** The client ended its side: a partially received request is dropped, never executed. */
  clientEnded(): void {
    this.drain();
  }

  /** The socket is gone: replies can no longer be sent; close the export once calls settle. */
  socketClosed(): void {
    this.parser.stop();
    this.draining = true;
    this.maybeFinish();
  }

  /** Stop reading requests; answer those in flight, then end the connection. */
  drain(): void {
    this.parser.stop();
    this.draining = true;
    // Keep reading (and discarding) so the client's FIN is seen and the socket can close.
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    this.maybeFinish();
  }

  // RequestSink --------------------------------------------------------------------------------

  check(req: RequestHeader): number {
    return checkRequest(req, this.exp, this.options.maxPayloadBytes, this.options.negotiated?.metaContexts.length ?? 0);
  }

  saturated(): boolean {
    if (this.paused) return true;
    if (this.draining || (this.inFlight < NBD_LIMITS.requestsInFlightMax && this.replyBytesOwed() < this.replyBytesMax())) return false;
    this.paused = true;
    this.socket.pause();
    return true;
  }

  badMagic(magic: number): void {
    this.options.log(`nbd: ${this.options.label}: bad request magic 0x${magic.toString(16).padStart(8, '0')}, closing the connection`);
    this.draining = true;
    this.socket.destroy();
  }

  request(req: RequestHeader, error: number, payload: Buffer | null): boolean {
    if (error !== 0) {
      this.reply(req, error, null);
      return false;
    }
    const exp = this.exp;
    const fua = (req.flags & CMD_FLAG_FUA) !== 0;
    switch (req.type) {
      case CMD_READ:
        this.readBytesInFlight += req.length;
        return this.invoke(req, () => exp.read(req.offset, req.length));
      case CMD_WRITE:
        return this.invoke(req, () => exp.write(req.offset, payload!, fua), payload);
      case CMD_WRITE_ZEROES:
        return this.invoke(req, () => exp.writeZeroes(req.offset, req.length, fua));
      case CMD_TRIM:
        return this.invoke(req, () => exp.trim(req.offset, req.length, fua));
      case CMD_FLUSH:
        return this.invoke(req, () => exp.flush());
      case CMD_BLOCK_STATUS:
        return this.invoke(req, () => blockStatus(exp, this.options.negotiated!.metaContexts, req.offset, req.length, (req.flags & CMD_FLAG_REQ_ONE) !== 0));
      case CMD_DISC:
        // proto.md: handle all outstanding requests, then close; no reply.
        this.drain();
        return false;
      default:
        this.reply(req, NBD_EINVAL, null);
        return false;
    }
  }

  // Internals ----------------------------------------------------------------------------------

  /** Calls the export now (so calls keep arrival order); returns true if the call is still pending. */
  private invoke(req: RequestHeader, call: () => unknown, payload: Buffer | null = null): boolean {
    this.inFlight++;
    let result: unknown;
    try {
      result = call();
    } catch (err) {
      this.settle(req, err, undefined, true);
      return false;
    }
    if (isPromise(result)) {
      result.then(
        (value: unknown) => {
          if (payload !== null) this.parser.recycle(payload);
          this.settle(req, null, value, false);
        },
        (err: unknown) => {
          if (payload !== null) this.parser.recycle(payload);
          this.settle(req, err ?? new RewindError('IO', 'the export rejected without a reason'), undefined, true);
        },
      );
      return true;
    }
    this.settle(req, null, result, false);
    return false;
  }

  private settle(req: RequestHeader, err: unknown, value: unknown, failed: boolean): void {
    this.inFlight--;
    if (req.type === CMD_READ) this.readBytesInFlight -= req.length;
    if (failed) {
      const code = nbdErrorFor(err);
      const message = err instanceof Error ? err.message : String(err);
      this.options.log(
        `nbd: ${this.options.label}: export "${this.exp.name}" command ${req.type} at ${req.offset}+${req.length} failed (${ERROR_NAMES[code] ?? code}): ${message}`,
      );
      this.reply(req, code, null, message);
    } else if (req.type === CMD_BLOCK_STATUS) {
      this.replyBlockStatus(req, value as ContextStatus[]);
    } else if (req.type === CMD_READ) {
      if (!Buffer.isBuffer(value) || value.length !== req.length) {
        // Never send a short or long payload: the stream would lose its framing.
        this.options.log(
          `nbd: ${this.options.label}: export "${this.exp.name}" read at ${req.offset}+${req.length} returned ${Buffer.isBuffer(value) ? value.length : typeof value} bytes`,
        );
        this.reply(req, NBD_EIO, null);
      } else {
        this.reply(req, 0, value);
      }
    } else {
      this.reply(req, 0, null);
    }
    this.maybeResume();
    this.maybeFinish();
  }

  /** A reply without a payload, or a read's. `message` goes to the client where the reply can carry one. */
  private reply(req: RequestHeader, error: number, data: Buffer | null, message = ''): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (!this.corked) this.cork();
    // With structured replies a read is never answered simply (proto.md), nor is a block status error.
    if (this.options.negotiated?.structuredReplies && (req.type === CMD_READ || req.type === CMD_BLOCK_STATUS)) {
      if (error !== 0) socket.write(errorChunk(req, error, message));
      else {
        socket.write(offsetDataHeader(req, req.offset, data!.length));
        socket.write(data!);
      }
      return;
    }
    socket.write(simpleReply(req, error));
    if (data !== null) socket.write(data);
  }

  private replyBlockStatus(req: RequestHeader, statuses: ContextStatus[]): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (!this.corked) this.cork();
    statuses.forEach((s, i) => socket.write(blockStatusChunk(req, s.id, s.extents, i === statuses.length - 1)));
  }

  private cork(): void {
    this.corked = true;
    this.socket.cork();
    process.nextTick(this.uncork);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  private replyBytesMax(): number {
    return this.options.replyBytesMax?.() ?? NBD_LIMITS.replyQueueBytesMax;
  }

  private replyBytesOwed(): number {
    return this.readBytesInFlight + this.socket.writableLength;
  }

  private maybeResume(): void {
    if (!this.paused || this.draining) return;
    if (this.inFlight < NBD_LIMITS.requestsInFlightMax / 2 && this.replyBytesOwed() < this.replyBytesMax() / 2) {
      this.paused = false;
      this.socket.resume();
      this.parser.resume();
    }
  }

  private maybeFinish(): void {
    if (!this.draining || this.inFlight > 0) return;
    const socket = this.socket;
    if (!socket.destroyed && !socket.writableEnded) {
      if (this.corked) this.uncork();
      socket.end();
      // A client that never closes its side must not keep the connection (or a server close) alive.
      setTimeout(() => socket.destroy(), NBD_LIMITS.lingerMs).unref();
    }
    if (this.exportClosed) return;
    this.exportClosed = true;
    let result: void | Promise<void>;
    try {
      result = this.exp.close();
    } catch (err) {
      this.closeFailed(err);
      this.resolveDone();
      return;
    }
    if (isPromise(result)) {
      result.then(
        () => this.resolveDone(),
        (err: unknown) => {
          this.closeFailed(err);
          this.resolveDone();
        },
      );
    } else {
      this.resolveDone();
    }
  }

  private closeFailed(err: unknown): void {
    this.options.log(`nbd: ${this.options.label}: closing export "${this.exp.name}" failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
