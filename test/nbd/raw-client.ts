// A deliberately minimal NBD client for tests: it speaks raw bytes so tests can send anything,
// including what a real client never would. Every wait is bounded.

import net from 'node:net';

export const NBDMAGIC = Buffer.from('NBDMAGIC');
export const IHAVEOPT = Buffer.from('IHAVEOPT');
export const OPTION_REPLY_MAGIC = Buffer.from('0003e889045565a9', 'hex');

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export interface SimpleReply {
  error: number;
  handle: bigint;
  data: Buffer | null;
}

const WAIT_MS = 3000;

export class RawClient {
  private buffered: Buffer[] = [];
  private bytes = 0;
  private waiter: (() => void) | null = null;
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered.push(chunk);
      this.bytes += chunk.length;
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {
      this.ended = true;
      this.wake();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** A client over an already connected socket (e.g. a TLS socket after NBD_OPT_STARTTLS). */
  static over(socket: net.Socket): RawClient {
    return new RawClient(socket);
  }

  static connect(port: number | string, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = typeof port === 'string' ? net.connect({ path: port }) : net.connect({ port, host });
      socket.setNoDelay(true);
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Exactly n bytes; rejects if the server closes first or nothing comes within WAIT_MS. */
  async read(n: number, waitMs = WAIT_MS): Promise<Buffer> {
    const deadline = Date.now() + waitMs;
    while (this.bytes < n) {
      if (this.ended) throw new Error(`connection closed with ${this.bytes} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.bytes})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    // Join only as many chunks as needed.
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const head = this.buffered[0]!;
      const take = Math.min(head.length, n - got);
      parts.push(head.subarray(0, take));
      got += take;
      if (take === head.length) this.buffered.shift();
      else this.buffered[0] = head.subarray(take);
    }
    this.bytes -= n;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  /** Resolves true if the server closes the connection within waitMs (any unread data ignored). */
  async closedWithin(waitMs = WAIT_MS): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)));
    const ended = new Promise<boolean>((resolve) => {
      const check = () => (this.ended ? resolve(true) : void (this.waiter = check));
      check();
    });
    try {
      return await Promise.race([ended, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  write(buf: Buffer): void {
    this.socket.write(buf);
  }

  destroy(): void {
    this.socket.destroy();
  }

  // Handshake ------------------------------------------------------------------------------------

  /** Reads the greeting and returns the handshake flags. */
  async greeting(): Promise<number> {
    const g = await this.read(18);
    if (!g.subarray(0, 8).equals(NBDMAGIC) || !g.subarray(8, 16).equals(IHAVEOPT)) throw new Error(`bad greeting ${g.toString('hex')}`);
    return g.readUInt16BE(16);
  }

  sendClientFlags(flags: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(flags >>> 0);
    this.write(b);
  }

  /** Greeting plus client flags FIXED_NEWSTYLE | NO_ZEROES. */
  async start(clientFlags = 3): Promise<number> {
    const flags = await this.greeting();
    this.sendClientFlags(clientFlags);
    return flags;
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.alloc(16);
    IHAVEOPT.copy(h, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(data.length, 12);
    this.write(Buffer.concat([h, data]));
  }

  async optionReply(): Promise<OptionReply> {
    const h = await this.read(20);
    if (!h.subarray(0, 8).equals(OPTION_REPLY_MAGIC)) throw new Error(`bad option reply magic ${h.toString('hex')}`);
    const length = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: length ? await this.read(length) : Buffer.alloc(0) };
  }

  /** Replies up to and including the first that is not NBD_REP_INFO / NBD_REP_SERVER. */
  async optionReplies(): Promise<OptionReply[]> {
    const out: OptionReply[] = [];
    for (;;) {
      const r = await this.optionReply();
      out.push(r);
      if (r.type !== 2 && r.type !== 3) return out;
    }
  }

  static infoData(name: string, infos: number[] = []): Buffer {
    const n = Buffer.from(name, 'utf8');
    const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
    b.writeUInt32BE(n.length, 0);
    n.copy(b, 4);
    b.writeUInt16BE(infos.length, 4 + n.length);
    infos.forEach((t, i) => b.writeUInt16BE(t, 6 + n.length + 2 * i));
    return b;
  }

  /** NBD_OPT_GO; on success returns export size and transmission flags. */
  async go(name: string, infos: number[] = []): Promise<{ size: number; flags: number; replies: OptionReply[] }> {
    this.sendOption(7, RawClient.infoData(name, infos));
    const replies = await this.optionReplies();
    const last = replies[replies.length - 1]!;
    if (last.type !== 1) throw new Error(`NBD_OPT_GO failed: reply type 0x${last.type.toString(16)} ${last.data.toString()}`);
    const exp = replies.find((r) => r.type === 3 && r.data.readUInt16BE(0) === 0)!;
    return { size: Number(exp.data.readBigUInt64BE(2)), flags: exp.data.readUInt16BE(10), replies };
  }

  /**
   * NBD_OPT_EXPORT_NAME, the old way to pick an export (no block sizes agreed, no error reply);
   * assumes NO_ZEROES was negotiated (start() does). Returns export size and transmission flags.
   */
  async exportName(name: string): Promise<{ size: number; flags: number }> {
    this.sendOption(1, Buffer.from(name, 'utf8'));
    const r = await this.read(10);
    return { size: Number(r.readBigUInt64BE(0)), flags: r.readUInt16BE(8) };
  }

  /** Connect, handshake and NBD_OPT_EXPORT_NAME in one step. */
  static async openByExportName(port: number, name: string): Promise<{ client: RawClient; size: number; flags: number }> {
    const client = await RawClient.connect(port);
    await client.start();
    const { size, flags } = await client.exportName(name);
    return { client, size, flags };
  }

  /** Connect, handshake and GO in one step. */
  static async open(port: number, name: string): Promise<{ client: RawClient; size: number; flags: number }> {
    const client = await RawClient.connect(port);
    await client.start();
    const { size, flags } = await client.go(name);
    return { client, size, flags };
  }

  // Transmission -------------------------------------------------------------------------------

  static requestHeader(type: number, opts: { flags?: number; handle?: bigint; offset?: bigint | number; length?: number; magic?: number } = {}): Buffer {
    const b = Buffer.alloc(28);
    b.writeUInt32BE(opts.magic ?? 0x25609513, 0);
    b.writeUInt16BE(opts.flags ?? 0, 4);
    b.writeUInt16BE(type, 6);
    b.writeBigUInt64BE(opts.handle ?? 1n, 8);
    b.writeBigUInt64BE(BigInt(opts.offset ?? 0), 16);
    b.writeUInt32BE(opts.length ?? 0, 24);
    return b;
  }

  sendRequest(type: number, opts: { flags?: number; handle?: bigint; offset?: bigint | number; length?: number; magic?: number; payload?: Buffer } = {}): void {
    const length = opts.length ?? opts.payload?.length ?? 0;
    const h = RawClient.requestHeader(type, { ...opts, length });
    this.write(opts.payload ? Buffer.concat([h, opts.payload]) : h);
  }

  /** Reads one simple reply; `dataLength` is read after it only if the error is zero. */
  async simpleReply(dataLength = 0): Promise<SimpleReply> {
    const h = await this.read(16);
    if (h.readUInt32BE(0) !== 0x67446698) throw new Error(`bad simple reply magic ${h.toString('hex')}`);
    const error = h.readUInt32BE(4);
    const handle = h.readBigUInt64BE(8);
    const data = error === 0 && dataLength > 0 ? await this.read(dataLength) : null;
    return { error, handle, data };
  }

  async readAt(offset: number, length: number, handle = 1n): Promise<SimpleReply> {
    this.sendRequest(0, { offset, length, handle });
    return this.simpleReply(length);
  }

  async writeAt(offset: number, payload: Buffer, flags = 0, handle = 1n): Promise<SimpleReply> {
    this.sendRequest(1, { offset, payload, flags, handle });
    return this.simpleReply();
  }

  /** NBD_CMD_DISC and wait for the server to close. */
  async disconnect(): Promise<boolean> {
    this.sendRequest(2);
    this.socket.end();
    return this.closedWithin();
  }
}
