// The journal's on-disk encoding. Every write becomes one record: a 48-byte header with its indicia
// and a CRC32C of the header, then the payload. Segments start with a 64-byte header.
//
// record header (little-endian)
//   0 u32 magic 'RWJR'     4 u8 version (1)   5 u8 flags (0)   6 u16 volume index
//   8 u32 payload length  12 u32 payload CRC32C
//  16 u64 sequence number 24 f64 time (ms since the epoch)   32 u64 volume offset
//  40 u32 reserved (0)    44 u32 CRC32C of bytes 0..44
// segment header
//   0 u32 magic 'RWJS'     4 u16 version (1)  6 u16 header bytes (64)
//   8 u64 first sequence number of the segment   16 f64 creation time   24..60 zero
//  60 u32 CRC32C of bytes 0..60
import { crc32c, getU64, putU64, tag } from '../encoding/fields.js';

export const RECORD_MAGIC = tag('RWJR');
export const SEGMENT_MAGIC = tag('RWJS');
export const RECORD_VERSION = 1;
export const SEGMENT_VERSION = 1;
export const RECORD_HEADER_BYTES = 48;
export const SEGMENT_HEADER_BYTES = 64;

export interface RecordHeader {
  seq: number;
  time: number;
  volume: number;
  offset: number;
  length: number;
  payloadCrc: number;
}

export function encodeRecordHeader(buf: Buffer, h: RecordHeader): void {
  buf.writeUInt32LE(RECORD_MAGIC, 0);
  buf.writeUInt8(RECORD_VERSION, 4);
  buf.writeUInt8(0, 5);
  buf.writeUInt16LE(h.volume, 6);
  buf.writeUInt32LE(h.length, 8);
  buf.writeUInt32LE(h.payloadCrc, 12);
  putU64(buf, 16, h.seq);
  buf.writeDoubleLE(h.time, 24);
  putU64(buf, 32, h.offset);
  buf.writeUInt32LE(0, 40);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 44)), 44);
}

/** Decodes a record header, or returns why it is not one. */
export function decodeRecordHeader(buf: Buffer, at = 0): RecordHeader | string {
  if (buf.byteLength - at < RECORD_HEADER_BYTES) return 'incomplete record header';
  const h = buf.subarray(at, at + RECORD_HEADER_BYTES);
  if (h.readUInt32LE(0) !== RECORD_MAGIC) return 'bad record magic';
  if (crc32c(h.subarray(0, 44)) !== h.readUInt32LE(44)) return 'record header checksum mismatch';
  if (h.readUInt8(4) !== RECORD_VERSION) return `record version ${h.readUInt8(4)} is not supported`;
  return {
    volume: h.readUInt16LE(6),
    length: h.readUInt32LE(8),
    payloadCrc: h.readUInt32LE(12),
    seq: getU64(h, 16),
    time: h.readDoubleLE(24),
    offset: getU64(h, 32),
  };
}

export function encodeSegmentHeader(firstSeq: number, time: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  buf.writeUInt32LE(SEGMENT_MAGIC, 0);
  buf.writeUInt16LE(SEGMENT_VERSION, 4);
  buf.writeUInt16LE(SEGMENT_HEADER_BYTES, 6);
  putU64(buf, 8, firstSeq);
  buf.writeDoubleLE(time, 16);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 60)), 60);
  return buf;
}

export function decodeSegmentHeader(buf: Buffer): { firstSeq: number; time: number } | string {
  if (buf.byteLength < SEGMENT_HEADER_BYTES) return 'incomplete segment header';
  if (buf.readUInt32LE(0) !== SEGMENT_MAGIC) return 'bad segment magic';
  if (crc32c(buf.subarray(0, 60)) !== buf.readUInt32LE(60)) return 'segment header checksum mismatch';
  if (buf.readUInt16LE(4) !== SEGMENT_VERSION) return `segment version ${buf.readUInt16LE(4)} is not supported`;
  return { firstSeq: getU64(buf, 8), time: buf.readDoubleLE(16) };
}
