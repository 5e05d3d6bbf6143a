// Transmission replies on the wire: simple replies, and structured reply chunks (proto.md
// "Structured reply chunk message") once NBD_OPT_STRUCTURED_REPLY is negotiated: OFFSET_DATA for a
// read, BLOCK_STATUS per metadata context, ERROR. Pure encoders; transmission.ts decides which.
//
// simple reply (16 bytes)              structured chunk header (20 bytes), then `length` bytes
//   0 u32 magic 0x67446698               0 u32 magic 0x668e33ef  4 u16 flags (DONE = 1)  6 u16 type
//   4 u32 error  8 u64 handle            8 u64 handle  16 u32 length
// payloads: OFFSET_DATA u64 offset + data; BLOCK_STATUS u32 context id + (u32 length, u32 flags)*;
// ERROR u32 error + u16 message length + message.
import {
  REPLY_FLAG_DONE,
  REPLY_TYPE_BLOCK_STATUS,
  REPLY_TYPE_ERROR,
  REPLY_TYPE_OFFSET_DATA,
  SIMPLE_REPLY_HEADER_BYTES,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_HEADER_BYTES,
  STRUCTURED_REPLY_MAGIC,
} from './constants.js';
import type { BlockStatusExtent } from './export.js';
import { messageBytes, writeUInt64 } from './handshake-wire.js';

/** The 64-bit handle a reply echoes, as two 32-bit halves. */
export interface ReplyHandle {
  readonly handleHi: number;
  readonly handleLo: number;
}

export function simpleReply(h: ReplyHandle, error: number): Buffer {
  const buf = Buffer.allocUnsafe(SIMPLE_REPLY_HEADER_BYTES);
  buf.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  buf.writeUInt32BE(error, 4);
  buf.writeUInt32BE(h.handleHi, 8);
  buf.writeUInt32BE(h.handleLo, 12);
  return buf;
}

/** A chunk header followed by room for `payloadBytes` bytes of payload (filled by the caller). */
function chunk(h: ReplyHandle, flags: number, type: number, length: number, payloadBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_BYTES + payloadBytes);
  buf.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  buf.writeUInt16BE(flags, 4);
  buf.writeUInt16BE(type, 6);
  buf.writeUInt32BE(h.handleHi, 8);
  buf.writeUInt32BE(h.handleLo, 12);
  buf.writeUInt32BE(length, 16);
  return buf;
}

/** The final OFFSET_DATA chunk of a read, without its `dataBytes` of data (sent right after it). */
export function offsetDataHeader(h: ReplyHandle, offset: number, dataBytes: number): Buffer {
  const buf = chunk(h, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, 8 + dataBytes, 8);
  writeUInt64(buf, offset, STRUCTURED_REPLY_HEADER_BYTES);
  return buf;
}

/** The final ERROR chunk of a reply: the error, with a message for a human when there is one. */
export function errorChunk(h: ReplyHandle, error: number, message = ''): Buffer {
  const text = messageBytes(message);
  const buf = chunk(h, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, 6 + text.length, 6 + text.length);
  buf.writeUInt32BE(error, STRUCTURED_REPLY_HEADER_BYTES);
  buf.writeUInt16BE(text.length, STRUCTURED_REPLY_HEADER_BYTES + 4);
  text.copy(buf, STRUCTURED_REPLY_HEADER_BYTES + 6);
  return buf;
}

/** One BLOCK_STATUS chunk: the extents of metadata context `id`; `done` on the reply's last chunk. */
export function blockStatusChunk(h: ReplyHandle, id: number, extents: readonly BlockStatusExtent[], done: boolean): Buffer {
  const length = 4 + 8 * extents.length;
  const buf = chunk(h, done ? REPLY_FLAG_DONE : 0, REPLY_TYPE_BLOCK_STATUS, length, length);
  let at = STRUCTURED_REPLY_HEADER_BYTES;
  buf.writeUInt32BE(id, at);
  at += 4;
  for (const e of extents) {
    buf.writeUInt32BE(e.length, at);
    buf.writeUInt32BE(e.flags >>> 0, at + 4);
    at += 8;
  }
  return buf;
}
