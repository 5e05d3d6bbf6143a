// Increment packs: one immutable file per applied window, `increments/<firstSeq>-<lastSeq>.pack`,
// holding for every changed block its new contents (the forward increment) and the XOR of old and
// new (the backward increment; old = new XOR delta), both zero-run encoded. A pack is written
// under a temporary name, synced and renamed, so a pack that exists is complete.
//
// pack header (96 bytes, little-endian)
//   0 u32 magic 'RWPK'  4 u16 version (1)  6 u16 header bytes (96)
//   8 u64 first seq  16 u64 last seq  24 f64 t1  32 f64 t2
//  40 u32 block size  44 u32 sections  48 u32 writes  52 u32 zero
//  56 u64 bytes written  64 u64 changed blocks  72 u64 forward bytes  80 u64 backward bytes
//  88 u32 zero  92 u32 CRC32C of bytes 0..92
// then `sections` sections, each a 32-byte header and a body:
//   0 u32 magic 'RWSC'  4 u16 version (1)  6 u16 zero  8 u32 volume index  12 u32 block count n
//  16 u32 forward bytes  20 u32 backward bytes  24 u32 CRC32C of the body  28 u32 CRC32C of bytes 0..28
//   body: n u64 block numbers (ascending) | n+1 u32 forward offsets | n+1 u32 backward offsets
//         | forward encodings | backward encodings
//   Offsets are relative to the start of their encodings. Bit 31 of a backward offset (i < n) says
//   which backward encoding block i has: set, the old block itself; clear, old XOR new.
import { crc32c, getU64, putU64, seqName, tag } from '../encoding/fields.js';
import { corrupt } from '../errors.js';
import { joinPath, readWholeFile, type Storage } from '../storage/storage.js';
import { BACKWARD_RAW, decodeBlock, OFFSET_MASK } from './codec.js';

export const PACK_MAGIC = tag('RWPK');
export const SECTION_MAGIC = tag('RWSC');
export const PACK_VERSION = 1;
export const PACK_HEADER_BYTES = 96;
export const SECTION_HEADER_BYTES = 32;
export const PACK_SUFFIX = '.pack';

export interface PackHeader {
  firstSeq: number;
  lastSeq: number;
  t1: number;
  t2: number;
  blockSize: number;
  sections: number;
  writes: number;
  bytesWritten: number;
  changedBlocks: number;
  fwdBytes: number;
  bwdBytes: number;
}

export const packName = (firstSeq: number, lastSeq: number) => `${seqName(firstSeq)}-${seqName(lastSeq)}${PACK_SUFFIX}`;

export interface PackFileName { firstSeq: number; lastSeq: number; name: string }

export function listPacks(storage: Storage, dir: string): PackFileName[] {
  const out: PackFileName[] = [];
  for (const name of storage.list(dir)) {
    const m = /^(\d{16})-(\d{16})\.pack$/.exec(name);
    if (m) out.push({ firstSeq: Number(m[1]), lastSeq: Number(m[2]), name });
  }
  return out.sort((a, b) => a.firstSeq - b.firstSeq);
}

export function encodePackHeader(h: PackHeader): Buffer {
  const b = Buffer.alloc(PACK_HEADER_BYTES);
  b.writeUInt32LE(PACK_MAGIC, 0);
  b.writeUInt16LE(PACK_VERSION, 4);
  b.writeUInt16LE(PACK_HEADER_BYTES, 6);
  putU64(b, 8, h.firstSeq);
  putU64(b, 16, h.lastSeq);
  b.writeDoubleLE(h.t1, 24);
  b.writeDoubleLE(h.t2, 32);
  b.writeUInt32LE(h.blockSize, 40);
  b.writeUInt32LE(h.sections, 44);
  b.writeUInt32LE(h.writes, 48);
  putU64(b, 56, h.bytesWritten);
  putU64(b, 64, h.changedBlocks);
  putU64(b, 72, h.fwdBytes);
  putU64(b, 80, h.bwdBytes);
  b.writeUInt32LE(crc32c(b.subarray(0, 92)), 92);
  return b;
}

export function decodePackHeader(b: Buffer): PackHeader | string {
  if (b.byteLength < PACK_HEADER_BYTES) return 'incomplete pack header';
  if (b.readUInt32LE(0) !== PACK_MAGIC) return 'bad pack magic';
  if (crc32c(b.subarray(0, 92)) !== b.readUInt32LE(92)) return 'pack header checksum mismatch';
  if (b.readUInt16LE(4) !== PACK_VERSION) return `pack version ${b.readUInt16LE(4)} is not supported`;
  return {
    firstSeq: getU64(b, 8), lastSeq: getU64(b, 16), t1: b.readDoubleLE(24), t2: b.readDoubleLE(32),
    blockSize: b.readUInt32LE(40), sections: b.readUInt32LE(44), writes: b.readUInt32LE(48),
    bytesWritten: getU64(b, 56), changedBlocks: getU64(b, 64), fwdBytes: getU64(b, 72), bwdBytes: getU64(b, 80),
  };
}

export const sectionBodyBytes = (blocks: number, fwdBytes: number, bwdBytes: number) => 8 * blocks + 8 * (blocks + 1) + fwdBytes + bwdBytes;

export function encodeSectionHeader(volume: number, blocks: number, fwdBytes: number, bwdBytes: number, bodyCrc: number): Buffer {
  const b = Buffer.alloc(SECTION_HEADER_BYTES);
  b.writeUInt32LE(SECTION_MAGIC, 0);
  b.writeUInt16LE(PACK_VERSION, 4);
  b.writeUInt32LE(volume, 8);
  b.writeUInt32LE(blocks, 12);
  b.writeUInt32LE(fwdBytes, 16);
  b.writeUInt32LE(bwdBytes, 20);
  b.writeUInt32LE(bodyCrc >>> 0, 24);
  b.writeUInt32LE(crc32c(b.subarray(0, 28)), 28);
  return b;
}

/** One section of a loaded pack: the changed blocks of one volume with their encodings. */
export class PackSection {
  readonly blocks: number[];
  private readonly view: DataView;
  private readonly fwdOffsets: number;
  private readonly bwdOffsets: number;
  private readonly fwdData: number;
  private readonly bwdData: number;

  constructor(readonly volume: number, readonly body: Buffer, n: number, readonly fwdBytes: number, readonly bwdBytes: number) {
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    this.blocks = new Array(n);
    for (let i = 0; i < n; i++) this.blocks[i] = getU64(body, 8 * i);
    this.fwdOffsets = 8 * n;
    this.bwdOffsets = this.fwdOffsets + 4 * (n + 1);
    this.fwdData = this.bwdOffsets + 4 * (n + 1);
    this.bwdData = this.fwdData + fwdBytes;
  }

  private range(table: number, data: number, i: number): [number, number] {
    return [data + (this.view.getUint32(table + 4 * i, true) & OFFSET_MASK), data + (this.view.getUint32(table + 4 * i + 4, true) & OFFSET_MASK)];
  }

  /** Writes the block's contents after the window (new) or before it (old) into dst. */
  decode(i: number, which: 'new' | 'old', dst: Uint8Array, dstOffset: number, blockSize: number): boolean {
    const [bs, be] = this.range(this.bwdOffsets, this.bwdData, i);
    if (which === 'old' && (this.view.getUint32(this.bwdOffsets + 4 * i, true) & BACKWARD_RAW) !== 0) {
      return decodeBlock(this.body, bs, be, dst, dstOffset, blockSize, false);
    }
    const [fs, fe] = this.range(this.fwdOffsets, this.fwdData, i);
    if (!decodeBlock(this.body, fs, fe, dst, dstOffset, blockSize, false)) return false;
    if (which === 'new') return true;
    return decodeBlock(this.body, bs, be, dst, dstOffset, blockSize, true);
  }
}

/** A pack read whole and checked. */
export class Pack {
  private maps = new Map<number, Map<number, { section: PackSection; index: number }>>();

  constructor(readonly path: string, readonly header: PackHeader, readonly headerCrc: number, readonly sections: PackSection[], readonly bytes: number) {}

  /** Changed blocks of one volume, block number -> where its encodings are. */
  blocksOf(volume: number): Map<number, { section: PackSection; index: number }> {
    let m = this.maps.get(volume);
    if (!m) {
      m = new Map();
      for (const s of this.sections) {
        if (s.volume !== volume) continue;
        for (let i = 0; i < s.blocks.length; i++) m.set(s.blocks[i], { section: s, index: i });
      }
      this.maps.set(volume, m);
    }
    return m;
  }

  decode(volume: number, block: number, which: 'new' | 'old', dst: Uint8Array, dstOffset: number): void {
    const at = this.blocksOf(volume).get(block);
    if (!at) throw new Error(`pack ${this.path} has no block ${block} of volume ${volume}`);
    if (!at.section.decode(at.index, which, dst, dstOffset, this.header.blockSize)) {
      throw corrupt(this.path, 0, `malformed encoding of block ${block} (volume index ${volume})`);
    }
  }
}

/** Reads and verifies a whole pack. Throws a CORRUPT error naming the file and byte position. */
export function readPack(storage: Storage, path: string): Pack {
  return parsePack(path, readWholeFile(storage, path));
}

/**
 * Checks and splits a whole pack held in `buf` (read from `path`, named in errors). The sections
 * are views into `buf`. Throws a CORRUPT error naming the file and byte position.
 */
export function parsePack(path: string, buf: Buffer): Pack {
  const h = decodePackHeader(buf);
  if (typeof h === 'string') throw corrupt(path, 0, h);
  const sections: PackSection[] = [];
  let at = PACK_HEADER_BYTES;
  let blocks = 0;
  for (let s = 0; s < h.sections; s++) {
    if (at + SECTION_HEADER_BYTES > buf.byteLength) throw corrupt(path, at, `pack ends before section ${s}`);
    const sh = buf.subarray(at, at + SECTION_HEADER_BYTES);
    if (sh.readUInt32LE(0) !== SECTION_MAGIC) throw corrupt(path, at, `bad section magic (section ${s})`);
    if (crc32c(sh.subarray(0, 28)) !== sh.readUInt32LE(28)) throw corrupt(path, at, `section ${s} header checksum mismatch`);
    const volume = sh.readUInt32LE(8);
    const n = sh.readUInt32LE(12);
    const fwd = sh.readUInt32LE(16);
    const bwd = sh.readUInt32LE(20);
    const bodyBytes = sectionBodyBytes(n, fwd, bwd);
    const start = at + SECTION_HEADER_BYTES;
    if (start + bodyBytes > buf.byteLength) throw corrupt(path, at, `section ${s} runs past the end of the pack`);
    const body = buf.subarray(start, start + bodyBytes);
    if (crc32c(body) !== sh.readUInt32LE(24)) throw corrupt(path, start, `section ${s} body checksum mismatch`);
    sections.push(new PackSection(volume, body, n, fwd, bwd));
    blocks += n;
    at = start + bodyBytes;
  }
  if (at !== buf.byteLength) throw corrupt(path, at, `${buf.byteLength - at} unexpected bytes after the last section`);
  if (blocks !== h.changedBlocks) throw corrupt(path, 0, `header says ${h.changedBlocks} changed blocks, sections hold ${blocks}`);
  return new Pack(path, h, buf.readUInt32LE(92), sections, buf.byteLength);
}

export const packPath = (dir: string, firstSeq: number, lastSeq: number) => joinPath(dir, packName(firstSeq, lastSeq));
