// Fixed newstyle handshake: greeting, client flags, then option haggling until the client picks an
// export (NBD_OPT_GO or NBD_OPT_EXPORT_NAME), aborts, or breaks the protocol. Handshake traffic is
// small and bounded (NBD_LIMITS.optionBytesMax), so it is buffered simply; the hot path is elsewhere.
// NBD_OPT_STRUCTURED_REPLY is acknowledged; the metadata-context options are meta-context.ts's, and
// the selection of the last SET goes with the export to transmission if the client opens that one.
//
// TLS (proto.md "TLS support"): with tls 'off' (NOTLS) NBD_OPT_STARTTLS gets NBD_REP_ERR_UNSUP.
// Otherwise STARTTLS is answered NBD_REP_ACK and config.startTls() upgrades the connection at once;
// option haggling continues over TLS (a second STARTTLS gets NBD_REP_ERR_INVALID). With 'required'
// (FORCEDTLS) every option before TLS other than STARTTLS and ABORT gets NBD_REP_ERR_TLS_REQD, and
// NBD_OPT_EXPORT_NAME before TLS closes the connection (it cannot carry an error).

import {
  CLIENT_FLAGS_KNOWN,
  EXPORT_NAME_ZEROES_BYTES,
  FLAG_C_NO_ZEROES,
  IHAVEOPT_HI,
  IHAVEOPT_LO,
  INFO_DESCRIPTION,
  NBD_LIMITS,
  OPTION_HEADER_BYTES,
  OPT_ABORT,
  OPT_EXPORT_NAME,
  OPT_GO,
  OPT_INFO,
  OPT_LIST,
  OPT_LIST_META_CONTEXT,
  OPT_SET_META_CONTEXT,
  OPT_STARTTLS,
  OPT_STRUCTURED_REPLY,
  REP_ACK,
  REP_ERR_INVALID,
  REP_ERR_POLICY,
  REP_ERR_TLS_REQD,
  REP_ERR_UNKNOWN,
  REP_ERR_UNSUP,
  REP_INFO,
  REP_META_CONTEXT,
  REP_SERVER,
} from './constants.js';
import {
  decodeString, EMPTY, greeting, infoReplies, messageBytes, optionReply, parseInfoRequest, transmissionFlags, writeUInt64, type InfoRequest,
} from './handshake-wire.js';
import { EXPORT_POLICY_CODE, type ExportProvider, type NbdExport, type OpenOptions } from './export.js';
import { answerMetaContext, metaContextReplyData } from './meta-context.js';

export interface HandshakeConfig {
  readonly provider: ExportProvider;
  /** Largest READ/WRITE payload accepted; the maximum block size advertised is at most this. */
  readonly maxPayloadBytes: number;
  /** Set when the connection is over the limit: every option is refused with this message. */
  readonly refusal: string | null;
  readonly send: (buf: Buffer) => void;
  readonly log: (msg: string) => void;
  /** 'off': NOTLS; 'optional': STARTTLS offered; 'required': nothing but STARTTLS/ABORT before TLS. */
  readonly tls?: 'off' | 'optional' | 'required';
  /**
   * Called right after the NBD_REP_ACK to NBD_OPT_STARTTLS was handed to the socket: from here on
   * every byte in either direction goes through TLS. Not called when tls is 'off'.
   */
  readonly startTls?: () => void;
}

/** What the transmission phase needs from the negotiation besides the export. */
export interface Negotiated {
  /** NBD_OPT_STRUCTURED_REPLY was acknowledged: reads (and block status) get structured replies. */
  readonly structuredReplies: boolean;
  /** The metadata contexts selected for the export opened; context id i + 1 is metaContexts[i]. */
  readonly metaContexts: readonly string[];
}

export type HandshakeOutcome =
  | { readonly kind: 'transmission'; readonly export: NbdExport; readonly leftover: Buffer; readonly negotiated: Negotiated }
  | { readonly kind: 'close'; readonly reason: string };

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * One connection's handshake. Feed it the socket's bytes with push(); run() resolves once the
 * connection enters transmission (with the opened export and any bytes that followed) or must close.
 */
export class HandshakeSession {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private wake: (() => void) | null = null;
  private noZeroes = false;
  private tlsActive = false;
  private structuredReplies = false;
  /** The last NBD_OPT_SET_META_CONTEXT's selection, and the export it named. */
  private selected: { exportName: string; names: string[] } | null = null;

  constructor(private readonly config: HandshakeConfig) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.notify();
  }

  /** The client closed its side (or the socket went away). */
  end(): void {
    this.ended = true;
    this.notify();
  }

  /** Whether more bytes are buffered than any well-behaved client can have sent. */
  get overflowing(): boolean {
    return this.buffered > NBD_LIMITS.optionBytesMax + 2 * OPTION_HEADER_BYTES;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Exactly n bytes, or null if the client went away first. */
  private async take(n: number): Promise<Buffer | null> {
    while (this.buffered < n) {
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  private leftover(): Buffer {
    const rest = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }

  async run(): Promise<HandshakeOutcome> {
    const { send } = this.config;
    send(greeting());
    const clientFlagsBuf = await this.take(4);
    if (clientFlagsBuf === null) return { kind: 'close', reason: 'client left before sending its flags' };
    const clientFlags = clientFlagsBuf.readUInt32BE(0);
    // proto.md: the server MUST drop the connection on client flags it does not know.
    if ((clientFlags & ~CLIENT_FLAGS_KNOWN) !== 0) {
      return { kind: 'close', reason: `unknown client flags 0x${clientFlags.toString(16)}` };
    }
    this.noZeroes = (clientFlags & FLAG_C_NO_ZEROES) !== 0;

    for (let options = 0; options < NBD_LIMITS.optionsPerConnectionMax; options++) {
      const header = await this.take(OPTION_HEADER_BYTES);
      if (header === null) return { kind: 'close', reason: 'client left during option haggling' };
      if (header.readUInt32BE(0) !== IHAVEOPT_HI || header.readUInt32BE(4) !== IHAVEOPT_LO) {
        return { kind: 'close', reason: 'bad option magic' };
      }
      const option = header.readUInt32BE(8);
      const length = header.readUInt32BE(12);
      if (length > NBD_LIMITS.optionBytesMax) {
        return { kind: 'close', reason: `option ${option} carries ${length} bytes, limit ${NBD_LIMITS.optionBytesMax}` };
      }
      const data = await this.take(length);
      if (data === null) return { kind: 'close', reason: 'client left in the middle of an option' };
      const outcome = await this.option(option, data);
      if (outcome !== null) return outcome;
    }
    return { kind: 'close', reason: `more than ${NBD_LIMITS.optionsPerConnectionMax} options without choosing an export` };
  }

  /** Answers one option; returns an outcome when the handshake is over. */
  private async option(option: number, data: Buffer): Promise<HandshakeOutcome | null> {
    const { send, refusal, provider } = this.config;
    const reply = (type: number, payload?: Buffer) => send(optionReply(option, type, payload));
    const fail = (type: number, message: string) => reply(type, messageBytes(message));

    if (option === OPT_ABORT) {
      reply(REP_ACK);
      return { kind: 'close', reason: 'client aborted the handshake' };
    }
    if (refusal !== null) {
      if (option === OPT_EXPORT_NAME) return { kind: 'close', reason: refusal };
      fail(REP_ERR_POLICY, refusal);
      return null;
    }
    const tls = this.config.tls ?? 'off';
    if (option === OPT_STARTTLS) {
      // NOTLS mode: proto.md allows NBD_REP_ERR_UNSUP from a server without TLS support.
      if (tls === 'off') {
        fail(REP_ERR_UNSUP, 'TLS is not configured on this server');
        return null;
      }
      if (this.tlsActive) {
        fail(REP_ERR_INVALID, 'TLS is already active on this connection');
        return null;
      }
      if (data.length !== 0) {
        fail(REP_ERR_INVALID, `NBD_OPT_STARTTLS carries no data, got ${data.length} bytes`);
        return null;
      }
      // The client must wait for this reply before its TLS handshake: plaintext after STARTTLS
      // would be taken for TLS, so it is a protocol violation.
      if (this.buffered > 0) return { kind: 'close', reason: 'client sent more data after NBD_OPT_STARTTLS before its reply' };
      reply(REP_ACK);
      this.tlsActive = true;
      // proto.md: no negotiation state survives STARTTLS.
      this.structuredReplies = false;
      this.selected = null;
      this.config.startTls!();
      return null;
    }
    if (tls === 'required' && !this.tlsActive) {
      // FORCEDTLS: NBD_OPT_EXPORT_NAME cannot carry an error, so it ends the session.
      if (option === OPT_EXPORT_NAME) return { kind: 'close', reason: 'NBD_OPT_EXPORT_NAME before TLS, which this server requires' };
      fail(REP_ERR_TLS_REQD, 'this server requires TLS: send NBD_OPT_STARTTLS first (e.g. an nbds:// URI)');
      return null;
    }
    switch (option) {
      case OPT_EXPORT_NAME: {
        // This option cannot carry an error: anything wrong means a hard disconnect (proto.md).
        const name = decodeString(data);
        if (name === null) return { kind: 'close', reason: 'NBD_OPT_EXPORT_NAME with an invalid name' };
        let exp: NbdExport;
        try {
          exp = await provider.open(name, this.openOptions(name));
        } catch (err) {
          return { kind: 'close', reason: `NBD_OPT_EXPORT_NAME "${name}": ${errorMessage(err)}` };
        }
        const tail = Buffer.alloc(10 + (this.noZeroes ? 0 : EXPORT_NAME_ZEROES_BYTES));
        writeUInt64(tail, exp.size, 0);
        tail.writeUInt16BE(transmissionFlags(exp), 8);
        send(tail);
        return { kind: 'transmission', export: exp, leftover: this.leftover(), negotiated: this.negotiated(name) };
      }
      case OPT_LIST: {
        if (data.length !== 0) {
          fail(REP_ERR_INVALID, `NBD_OPT_LIST carries no data, got ${data.length} bytes`);
          return null;
        }
        let exports: { name: string; description?: string }[];
        try {
          exports = provider.list();
        } catch (err) {
          fail(REP_ERR_POLICY, `cannot list exports: ${errorMessage(err)}`);
          return null;
        }
        for (const { name, description } of exports) {
          const nameBytes = Buffer.from(name, 'utf8');
          const desc = description ? messageBytes(description) : EMPTY;
          const payload = Buffer.allocUnsafe(4 + nameBytes.length + desc.length);
          payload.writeUInt32BE(nameBytes.length, 0);
          nameBytes.copy(payload, 4);
          desc.copy(payload, 4 + nameBytes.length);
          reply(REP_SERVER, payload);
        }
        reply(REP_ACK);
        return null;
      }
      case OPT_INFO:
      case OPT_GO: {
        const request = parseInfoRequest(data);
        if (typeof request === 'string') {
          fail(REP_ERR_INVALID, request);
          return null;
        }
        let exp: NbdExport;
        try {
          exp = await provider.open(request.name, option === OPT_GO ? this.openOptions(request.name) : undefined);
        } catch (err) {
          const code = (err as { code?: unknown } | null)?.code;
          fail(code === EXPORT_POLICY_CODE ? REP_ERR_POLICY : REP_ERR_UNKNOWN, errorMessage(err));
          return null;
        }
        this.sendInfo(option, exp, request);
        reply(REP_ACK);
        if (option === OPT_GO) return { kind: 'transmission', export: exp, leftover: this.leftover(), negotiated: this.negotiated(request.name) };
        try {
          await exp.close();
        } catch (err) {
          this.config.log(`nbd: closing export "${exp.name}" after NBD_OPT_INFO failed: ${errorMessage(err)}`);
        }
        return null;
      }
      case OPT_STRUCTURED_REPLY: {
        if (data.length !== 0) {
          fail(REP_ERR_INVALID, `NBD_OPT_STRUCTURED_REPLY carries no data, got ${data.length} bytes`);
          return null;
        }
        this.structuredReplies = true;
        reply(REP_ACK);
        return null;
      }
      case OPT_LIST_META_CONTEXT:
      case OPT_SET_META_CONTEXT: {
        const set = option === OPT_SET_META_CONTEXT;
        // A SET replaces the selection even when it fails (proto.md).
        if (set) this.selected = null;
        const answer = answerMetaContext(provider, option, data, this.structuredReplies);
        if (answer.kind === 'error') {
          // Clients print only that the context is not offered: the reason goes to the server's log too.
          this.config.log(`nbd: option ${option} (${set ? 'SET' : 'LIST'}_META_CONTEXT) refused: ${answer.message}`);
          fail(answer.reply, answer.message);
          return null;
        }
        answer.names.forEach((name, i) => reply(REP_META_CONTEXT, metaContextReplyData(set ? i + 1 : 0, name)));
        if (set) this.selected = { exportName: answer.exportName, names: answer.names };
        reply(REP_ACK);
        return null;
      }
      default:
        // Includes NBD_OPT_EXTENDED_HEADERS: clients fall back.
        fail(REP_ERR_UNSUP, `option ${option} is not supported`);
        return null;
    }
  }

  /** The contexts selected for `name`: those of the last SET, if it named this export. */
  private contextsFor(name: string): string[] {
    return this.selected !== null && this.selected.exportName === name ? this.selected.names : [];
  }

  private openOptions(name: string): OpenOptions {
    return { metaContexts: this.contextsFor(name) };
  }

  private negotiated(name: string): Negotiated {
    return { structuredReplies: this.structuredReplies, metaContexts: this.contextsFor(name) };
  }

  private sendInfo(option: number, exp: NbdExport, request: InfoRequest): void {
    const { send, maxPayloadBytes, provider } = this.config;
    let description: string | undefined;
    if (request.infos.includes(INFO_DESCRIPTION)) {
      try {
        description = provider.list().find((e) => e.name === exp.name)?.description;
      } catch {
        description = undefined;
      }
    }
    for (const info of infoReplies(exp, request.infos, maxPayloadBytes, description)) send(optionReply(option, REP_INFO, info));
  }
}
