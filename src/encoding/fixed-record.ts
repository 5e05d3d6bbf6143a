// Fixed-size little-endian records framed the way rewind frames its headers and entries:
//
//   0 u32 magic  4 u16 version  6 u16 record bytes  ...fields...  bytes-4 u32 CRC32C of bytes 0..bytes-4
//
// A record kind declares its fields once, as a table of byte offset and type; encode and decode
// both follow that table, so the byte table at the top of a format's file and its code say the
// same thing in one place each. Bytes no field covers are written as zero.
import { crc32c, getU64, putU64 } from './fields.js';
import { assert } from '../errors.js';

export type FieldType = 'u16' | 'u32' | 'u64' | 'f64';

const FIELD_BYTES: Record<FieldType, number> = { u16: 2, u32: 4, u64: 8, f64: 8 };

/** Every numeric field of T, with its byte offset and type. */
export type FieldTable<T> = { readonly [K in keyof T]: readonly [offset: number, type: FieldType] };

export interface FixedRecordSpec<T> {
  magic: number;
  version: number;
  bytes: number;
  /** Names the record in decode failures: `incomplete ${record}`, `${record} checksum mismatch`. */
  record: string;
  /** Names the format in decode failures: `bad ${format} magic`, `${format} version 2 is not supported`. */
  format: string;
  fields: FieldTable<T>;
  /** Older versions still read (their fields are a subset: bytes a version left zero read as zero). */
  alsoReads?: readonly number[];
}

/** Header framing: magic, version, size. The CRC takes the last 4 bytes. */
const FRAME_BYTES = 8;

export class FixedRecord<T extends { [K in keyof T]: number }> {
  private readonly fields: [keyof T, number, FieldType][];
  readonly crcOffset: number;

  constructor(private readonly spec: FixedRecordSpec<T>) {
    this.crcOffset = spec.bytes - 4;
    this.fields = (Object.keys(spec.fields) as (keyof T)[]).map((k) => [k, spec.fields[k][0], spec.fields[k][1]]);
    const sorted = [...this.fields].sort((a, b) => a[1] - b[1]);
    let end = FRAME_BYTES;
    for (const [name, at, type] of sorted) {
      assert(at >= end, `field ${String(name)} of a ${spec.record} does not overlap the one before it or the framing`);
      end = at + FIELD_BYTES[type];
    }
    assert(end <= this.crcOffset, `fields of a ${spec.record} end before its checksum`);
  }

  get bytes(): number {
    return this.spec.bytes;
  }

  encode(values: T): Buffer {
    const b = Buffer.alloc(this.spec.bytes);
    b.writeUInt32LE(this.spec.magic, 0);
    b.writeUInt16LE(this.spec.version, 4);
    b.writeUInt16LE(this.spec.bytes, 6);
    for (const [name, at, type] of this.fields) {
      const v = values[name];
      if (type === 'u16') b.writeUInt16LE(v, at);
      else if (type === 'u32') b.writeUInt32LE(v, at);
      else if (type === 'u64') putU64(b, at, v);
      else b.writeDoubleLE(v, at);
    }
    b.writeUInt32LE(crc32c(b.subarray(0, this.crcOffset)), this.crcOffset);
    return b;
  }

  /** The fields of a well-framed record, or why it is not one. */
  decode(b: Buffer): T | string {
    const { record, format } = this.spec;
    if (b.byteLength < this.spec.bytes) return `incomplete ${record}`;
    if (b.readUInt32LE(0) !== this.spec.magic) return `bad ${format} magic`;
    if (crc32c(b.subarray(0, this.crcOffset)) !== this.checksum(b)) return `${record} checksum mismatch`;
    const version = b.readUInt16LE(4);
    if (version !== this.spec.version && !(this.spec.alsoReads ?? []).includes(version)) return `${format} version ${b.readUInt16LE(4)} is not supported`;
    const out = {} as T;
    for (const [name, at, type] of this.fields) {
      out[name] = (type === 'u16' ? b.readUInt16LE(at) : type === 'u32' ? b.readUInt32LE(at) : type === 'u64' ? getU64(b, at) : b.readDoubleLE(at)) as T[keyof T];
    }
    return out;
  }

  /** The CRC32C a record carries (of its bytes before the checksum). */
  checksum(b: Buffer): number {
    return b.readUInt32LE(this.crcOffset);
  }
}
