// Incremental parser for transmission-phase requests. It takes the socket's chunks as they come,
// never concatenates them, and hands a write's payload on as a view into the chunk when the
// payload lies inside one chunk; otherwise it assembles the payload in one buffer, reused from
// request to request unless the consumer keeps it. A rejected write's payload is skipped without
// being buffered.
//
// A volatile chunk (a view into a read buffer the socket reuses, see socket-reads.ts) is valid only
// during push(): the parser copies whatever it keeps, and a write's payload always goes out in an
// assembly buffer. Assembly buffers a consumer kept come back through recycle() once it is done
// with them, so a steady stream of asynchronous writes allocates nothing.
//
// Backpressure works between requests, not between socket reads: before each request the parser
// asks the sink whether it may take one more (RequestSink.saturated). If not, it keeps the rest of
// the chunk (a copy if volatile) and stops until resume(). One socket read can hold thousands of
// 28-byte READ headers, so without this a single chunk could queue any number of large replies.

import { CMD_WRITE, REQUEST_HEADER_BYTES, REQUEST_MAGIC } from './constants.js';

export interface RequestHeader {
  readonly flags: number;
  readonly type: number;
  /** The 64-bit handle as two 32-bit halves: opaque, echoed back in the reply. */
  readonly handleHi: number;
  readonly handleLo: number;
  /** Exact below 2^53; anything larger stays larger than any export size. */
  readonly offset: number;
  readonly length: number;
}

export interface RequestSink {
  /** Called when a header arrives: 0 accepts the request, an NBD error value rejects it. */
  check(req: RequestHeader): number;
  /**
   * Called once the request is complete (for a write, once its payload has arrived or been skipped).
   * `payload` is set for accepted writes only. Return true if `payload` must stay untouched after
   * this call returns (for instance until an asynchronous write settles).
   */
  request(req: RequestHeader, error: number, payload: Buffer | null): boolean;
  /** The stream is not NBD requests any more; the parser has stopped. */
  badMagic(magic: number): void;
  /**
   * Asked before each request: true holds the parser (the sink stops the socket) until resume().
   */
  saturated(): boolean;
}

/** Assembly buffers up to this size are kept for the next request. */
const SPARE_BYTES_MAX = 4 * 1024 * 1024;
/** Recycled assembly buffers kept at most (bytes, all together). */
const POOL_BYTES_MAX = 16 * 1024 * 1024;

const enum State {
  Header,
  Payload,
  Skip,
  Stopped,
}

export class RequestParser {
  private state = State.Header;
  private readonly header = Buffer.alloc(REQUEST_HEADER_BYTES);
  private headerFill = 0;
  private current: RequestHeader | null = null;
  private currentError = 0;
  private payload: Buffer | null = null;
  private payloadFromSpare = false;
  private payloadFill = 0;
  private skipRemaining = 0;
  private spare: Buffer | null = null;
  /** Memory of assembly buffers a consumer still holds (see recycle()). */
  private readonly lent = new Set<ArrayBufferLike>();
  private readonly pool: Buffer[] = [];
  private poolBytes = 0;
  /** Bytes received but not parsed while the sink is saturated, in arrival order. */
  private held: Buffer[] | null = null;

  constructor(private readonly sink: RequestSink) {}

  /** True while part of a request (header or payload) has arrived but not all of it. */
  get midRequest(): boolean {
    return this.state === State.Payload || this.state === State.Skip || (this.state === State.Header && this.headerFill > 0);
  }

  get stopped(): boolean {
    return this.state === State.Stopped;
  }

  /** Stop parsing: later chunks are ignored and a partial request is dropped. */
  stop(): void {
    this.state = State.Stopped;
    this.current = null;
    this.payload = null;
    this.held = null;
  }

  /** True while the parser keeps bytes back because the sink was saturated. */
  get holding(): boolean {
    return this.held !== null;
  }

  /** The sink can take requests again: parse what was held back (it may be held again). */
  resume(): void {
    const held = this.held;
    if (held === null) return;
    this.held = null;
    for (const chunk of held) this.push(chunk);
  }

  /**
   * A payload handed to RequestSink.request(), which returned true, is no longer needed. If it is
   * an assembly buffer, it is reused for a later request.
   */
  recycle(payload: Buffer): void {
    const memory = payload.buffer;
    if (!this.lent.delete(memory)) return;
    if (this.poolBytes + memory.byteLength > POOL_BYTES_MAX) return;
    this.pool.push(Buffer.from(memory));
    this.poolBytes += memory.byteLength;
  }

  /** volatile: the chunk's memory is reused once push() returns, so nothing may keep a view of it. */
  push(chunk: Buffer, volatile = false): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      switch (this.state) {
        case State.Stopped:
          return;
        case State.Header: {
          if (this.headerFill === 0 && (this.held !== null || this.sink.saturated())) {
            this.hold(chunk.subarray(pos), volatile);
            return;
          }
          if (this.headerFill === 0 && end - pos >= REQUEST_HEADER_BYTES) {
            pos = this.onHeader(chunk, pos);
          } else {
            const n = Math.min(REQUEST_HEADER_BYTES - this.headerFill, end - pos);
            chunk.copy(this.header, this.headerFill, pos, pos + n);
            this.headerFill += n;
            pos += n;
            if (this.headerFill === REQUEST_HEADER_BYTES) {
              this.headerFill = 0;
              this.onHeader(this.header, 0);
            }
          }
          // A write whose payload is wholly inside this chunk goes out as a view, no copy.
          if (!volatile && (this.state as State) === State.Payload && this.payloadFill === 0 && end - pos >= this.current!.length && this.payload === null) {
            const req = this.current!;
            const view = chunk.subarray(pos, pos + req.length);
            pos += req.length;
            this.finish(req, 0, view);
          }
          break;
        }
        case State.Payload: {
          const req = this.current!;
          if (this.payload === null) this.payload = this.assemblyBuffer(req.length);
          const n = Math.min(req.length - this.payloadFill, end - pos);
          chunk.copy(this.payload, this.payloadFill, pos, pos + n);
          this.payloadFill += n;
          pos += n;
          if (this.payloadFill === req.length) {
            const payload = this.payload;
            const fromSpare = this.payloadFromSpare;
            this.payload = null;
            this.payloadFill = 0;
            const retained = this.finish(req, 0, payload);
            if (retained && fromSpare) {
              if (this.spare !== null && this.spare.buffer === payload.buffer) this.spare = null;
              this.lent.add(payload.buffer);
            }
          }
          break;
        }
        case State.Skip: {
          const n = Math.min(this.skipRemaining, end - pos);
          this.skipRemaining -= n;
          pos += n;
          if (this.skipRemaining === 0) this.finish(this.current!, this.currentError, null);
          break;
        }
      }
    }
  }

  private hold(rest: Buffer, volatile: boolean): void {
    (this.held ??= []).push(volatile ? Buffer.from(rest) : rest);
  }

  /** Decodes the header at buf[pos..pos+28) and returns the position after it. */
  private onHeader(buf: Buffer, pos: number): number {
    const magic = buf.readUInt32BE(pos);
    if (magic !== REQUEST_MAGIC) {
      this.stop();
      this.sink.badMagic(magic);
      return buf.length;
    }
    const req: RequestHeader = {
      flags: buf.readUInt16BE(pos + 4),
      type: buf.readUInt16BE(pos + 6),
      handleHi: buf.readUInt32BE(pos + 8),
      handleLo: buf.readUInt32BE(pos + 12),
      offset: buf.readUInt32BE(pos + 16) * 0x1_0000_0000 + buf.readUInt32BE(pos + 20),
      length: buf.readUInt32BE(pos + 24),
    };
    const error = this.sink.check(req);
    if (this.state === State.Stopped) return pos + REQUEST_HEADER_BYTES;
    if (req.type === CMD_WRITE && req.length > 0) {
      this.current = req;
      if (error === 0) {
        this.state = State.Payload;
        this.payloadFill = 0;
      } else {
        this.state = State.Skip;
        this.currentError = error;
        this.skipRemaining = req.length;
      }
    } else {
      this.finish(req, error, null);
    }
    return pos + REQUEST_HEADER_BYTES;
  }

  private finish(req: RequestHeader, error: number, payload: Buffer | null): boolean {
    if (this.state !== State.Stopped) this.state = State.Header;
    this.current = null;
    this.currentError = 0;
    return this.sink.request(req, error, payload);
  }

  private assemblyBuffer(length: number): Buffer {
    if (this.spare === null || this.spare.length < length) {
      // A recycled buffer that is large enough becomes the spare.
      const i = this.pool.findIndex((b) => b.length >= length);
      if (i >= 0) {
        const [buf] = this.pool.splice(i, 1);
        this.poolBytes -= buf!.length;
        this.spare = buf!;
      }
    }
    if (this.spare !== null && this.spare.length >= length) {
      this.payloadFromSpare = true;
      return this.spare.subarray(0, length);
    }
    const buf = Buffer.allocUnsafeSlow(length);
    if (length <= SPARE_BYTES_MAX) {
      this.spare = buf;
      this.payloadFromSpare = true;
    } else {
      this.payloadFromSpare = false;
    }
    return buf;
  }
}
