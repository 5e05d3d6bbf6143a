// The handshake's wire encodings: the greeting, option replies, NBD strings, NBD_OPT_INFO/GO
// requests and the transmission flags an export advertises. Pure functions over bytes; the
// handshake session (handshake.ts) decides which to send.
import {
  FLAG_FIXED_NEWSTYLE,
  INFO_BLOCK_SIZE,
  INFO_DESCRIPTION,
  INFO_EXPORT,
  INFO_NAME,
  FLAG_NO_ZEROES,
  IHAVEOPT_HI,
  IHAVEOPT_LO,
  NBD_LIMITS,
  NBDMAGIC_HI,
  NBDMAGIC_LO,
  OPTION_REPLY_HEADER_BYTES,
  OPTION_REPLY_MAGIC_HI,
  OPTION_REPLY_MAGIC_LO,
  TFLAG_CAN_MULTI_CONN,
  TFLAG_HAS_FLAGS,
  TFLAG_READ_ONLY,
  TFLAG_SEND_FLUSH,
  TFLAG_SEND_FUA,
  TFLAG_SEND_TRIM,
  TFLAG_SEND_WRITE_ZEROES,
} from './constants.js';
import type { NbdExport } from './export.js';

export const EMPTY = Buffer.alloc(0);

export function transmissionFlags(exp: NbdExport): number {
  let flags = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_FUA;
  // A read-only export offers no write-type command (they are still answered, with EPERM).
  if (exp.readOnly) flags |= TFLAG_READ_ONLY;
  else {
    flags |= TFLAG_SEND_WRITE_ZEROES;
    if (exp.canTrim) flags |= TFLAG_SEND_TRIM;
  }
  if (exp.canMultiConn) flags |= TFLAG_CAN_MULTI_CONN;
  return flags;
}

export function greeting(): Buffer {
  const buf = Buffer.allocUnsafe(18);
  buf.writeUInt32BE(NBDMAGIC_HI, 0);
  buf.writeUInt32BE(NBDMAGIC_LO, 4);
  buf.writeUInt32BE(IHAVEOPT_HI, 8);
  buf.writeUInt32BE(IHAVEOPT_LO, 12);
  buf.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return buf;
}

export function optionReply(option: number, type: number, data: Buffer = EMPTY): Buffer {
  const buf = Buffer.allocUnsafe(OPTION_REPLY_HEADER_BYTES + data.length);
  buf.writeUInt32BE(OPTION_REPLY_MAGIC_HI, 0);
  buf.writeUInt32BE(OPTION_REPLY_MAGIC_LO, 4);
  buf.writeUInt32BE(option, 8);
  buf.writeUInt32BE(type, 12);
  buf.writeUInt32BE(data.length, 16);
  data.copy(buf, OPTION_REPLY_HEADER_BYTES);
  return buf;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes an NBD string: valid UTF-8, no NUL, at most NBD_LIMITS.stringBytesMax bytes. Null if not. */
export function decodeString(bytes: Buffer): string | null {
  if (bytes.length > NBD_LIMITS.stringBytesMax || bytes.includes(0)) return null;
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** Truncates a message to a valid NBD string. */
export function messageBytes(message: string): Buffer {
  let buf = Buffer.from(message.replace(/\0/g, ' '), 'utf8');
  if (buf.length > NBD_LIMITS.stringBytesMax) buf = Buffer.from(buf.subarray(0, NBD_LIMITS.stringBytesMax).toString('utf8').replace(/\uFFFD+$/, ''), 'utf8');
  return buf;
}

export interface InfoRequest {
  readonly name: string;
  readonly infos: number[];
}

/** Parses NBD_OPT_INFO / NBD_OPT_GO data; a string says why it is invalid. */
export function parseInfoRequest(data: Buffer): InfoRequest | string {
  if (data.length < 6) return `option data is ${data.length} bytes, at least 6 needed`;
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 6) return `export name length ${nameLength} overruns the option data (${data.length} bytes)`;
  const name = decodeString(data.subarray(4, 4 + nameLength));
  if (name === null) return `export name is not a valid NBD string (UTF-8, no NUL, at most ${NBD_LIMITS.stringBytesMax} bytes)`;
  const count = data.readUInt16BE(4 + nameLength);
  if (data.length !== 6 + nameLength + 2 * count) {
    return `option data is ${data.length} bytes, but ${count} information requests need ${6 + nameLength + 2 * count}`;
  }
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(data.readUInt16BE(6 + nameLength + 2 * i));
  return { name, infos };
}


/**
 * The NBD_REP_INFO payloads for NBD_OPT_INFO/GO: NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE always (the
 * maximum is below the protocol's default, unlimited), NAME and DESCRIPTION when asked (and known).
 */
export function infoReplies(exp: NbdExport, infos: readonly number[], maxPayloadBytes: number, description: string | undefined): Buffer[] {
  const out: Buffer[] = [];
  const info = Buffer.allocUnsafe(12);
  info.writeUInt16BE(INFO_EXPORT, 0);
  writeUInt64(info, exp.size, 2);
  info.writeUInt16BE(transmissionFlags(exp), 10);
  out.push(info);
  const sizes = Buffer.allocUnsafe(14);
  sizes.writeUInt16BE(INFO_BLOCK_SIZE, 0);
  sizes.writeUInt32BE(NBD_LIMITS.blockSizeMin, 2);
  sizes.writeUInt32BE(NBD_LIMITS.blockSizePreferred, 6);
  sizes.writeUInt32BE(Math.min(maxPayloadBytes, NBD_LIMITS.blockSizeMaxAdvertised), 10);
  out.push(sizes);
  const tagged = (type: number, text: Buffer) => {
    const payload = Buffer.allocUnsafe(2 + text.length);
    payload.writeUInt16BE(type, 0);
    text.copy(payload, 2);
    out.push(payload);
  };
  if (infos.includes(INFO_NAME)) tagged(INFO_NAME, Buffer.from(exp.name, 'utf8'));
  if (infos.includes(INFO_DESCRIPTION) && description) tagged(INFO_DESCRIPTION, messageBytes(description));
  return out;
}

export function writeUInt64(buf: Buffer, value: number, pos: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), pos);
  buf.writeUInt32BE(value >>> 0, pos + 4);
}
