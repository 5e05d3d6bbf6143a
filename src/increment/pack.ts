// Increment packs: one immutable file per applied window (or run of windows, once consolidated),
// `increments/<firstSeq>-<lastSeq>.pack`, holding for every changed block its old contents (the
// backward increment, zero-run encoded) and a CRC32C of its new contents. The forward increment is
// the window's journal records, which the journal keeps anyway: one durable copy fewer than a pack
// that also holds the new blocks (format 1, still read: forward encodings and backward XOR deltas).
// A pack is written under a temporary name, synced and renamed, so a pack that exists is complete.
//
// pack header (96 bytes, little-endian)
//   0 u32 magic 'RWPK'  4 u16 version (2; 1 is read)  6 u16 header bytes (96)
//   8 u64 first seq  16 u64 last seq  24 f64 t1  32 f64 t2
//  40 u32 block size  44 u32 sections  48 u32 writes  52 u32 forward (block-encoding.ts FORWARD; 0 in version 1)
//  56 u64 bytes written  64 u64 changed blocks  72 u64 forward bytes  80 u64 backward bytes
//  88 u32 zero  92 u32 CRC32C of bytes 0..92
// then `sections` sections, each a 32-byte header and a body:
//   0 u32 magic 'RWSC'  4 u16 version (1)  6 u16 zero  8 u32 volume index  12 u32 block count n
//  16 u32 forward bytes  20 u32 backward bytes  24 u32 CRC32C of the body  28 u32 CRC32C of bytes 0..28
//   body: n u64 block numbers (ascending) | n+1 u32 forward offsets | n+1 u32 backward offsets
//         | forward encodings | backward encodings
//   (the body and the block encoding are src/increment/block-encoding.ts's)
import { crc32c, getU64, seqName, tag } from '../encoding/fields.js';
import { assert, corrupt } from '../errors.js';
import { FixedRecord } from '../encoding/fixed-record.js';
import { joinPath, readWholeFile, type Storage } from '../storage/storage.js';
import { decodeSectionBlock, FORWARD, isForwardKind, sectionBodyBytes, sectionLayout, sectionNewCrc, type ForwardKind, type SectionLayout } from './block-encoding.js';

export const PACK_MAGIC = tag('RWPK');
export const SECTION_MAGIC = tag('RWSC');
export const PACK_VERSION = 2;
/** Sections keep their own version: their framing did not change. */
export const SECTION_VERSION = 1;
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
  /** Where the new contents of its blocks are (FORWARD). */
  forward: ForwardKind;
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

const PACK_HEADER = new FixedRecord<PackHeader>({
  magic: PACK_MAGIC, version: PACK_VERSION, alsoReads: [1], bytes: PACK_HEADER_BYTES, record: 'pack header', format: 'pack',
  fields: {
    firstSeq: [8, 'u64'], lastSeq: [16, 'u64'], t1: [24, 'f64'], t2: [32, 'f64'],
    blockSize: [40, 'u32'], sections: [44, 'u32'], writes: [48, 'u32'], forward: [52, 'u32'],
    bytesWritten: [56, 'u64'], changedBlocks: [64, 'u64'], fwdBytes: [72, 'u64'], bwdBytes: [80, 'u64'],
  },
});

export const encodePackHeader = (h: PackHeader): Buffer => PACK_HEADER.encode(h);

export function decodePackHeader(b: Buffer): PackHeader | string {
  const h = PACK_HEADER.decode(b);
  if (typeof h === 'string') return h;
  if (!isForwardKind(h.forward)) return `pack header names an unknown forward kind ${h.forward}`;
  // A format 1 pack holds its forward encodings (the field was zero there).
  return h;
}

/** The CRC32C a pack header carries; transaction entries record it. */
export const packHeaderCrc = (b: Buffer): number => PACK_HEADER.checksum(b);

export function encodeSectionHeader(volume: number, blocks: number, fwdBytes: number, bwdBytes: number, bodyCrc: number): Buffer {
  const b = Buffer.alloc(SECTION_HEADER_BYTES);
  b.writeUInt32LE(SECTION_MAGIC, 0);
  b.writeUInt16LE(SECTION_VERSION, 4);
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
  private readonly layout: SectionLayout;

  /** `bodyPos`: where the body lies in the pack file. */
  constructor(readonly volume: number, readonly body: Buffer, readonly bodyPos: number, n: number, readonly fwdBytes: number, readonly bwdBytes: number, readonly forward: ForwardKind) {
    this.layout = sectionLayout(n, fwdBytes, bwdBytes, forward);
    assert(body.byteLength === this.layout.bodyBytes, `a section body of ${n} blocks holds ${this.layout.bodyBytes} bytes`);
    this.blocks = new Array(n);
    for (let i = 0; i < n; i++) this.blocks[i] = getU64(body, 8 * i);
  }

  /** Writes block `i`'s contents after the window (new) or before it (old) into dst. False: malformed encoding. */
  decode(i: number, which: 'new' | 'old', dst: Uint8Array, dstOffset: number, blockSize: number): boolean {
    return decodeSectionBlock(this.body, this.layout, i, which, dst, dstOffset, blockSize);
  }

  /** The CRC32C of block `i`'s new contents (a pack without forward encodings). */
  newCrc(i: number): number {
    return sectionNewCrc(this.body, this.layout, i);
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

  /** The CRC32C of a block's new contents (a pack without forward encodings). */
  newCrc(volume: number, block: number): number {
    const at = this.blocksOf(volume).get(block);
    assert(at, `a block whose CRC is read from a pack is one it holds (pack ${this.path} has no block ${block} of volume ${volume})`);
    return at.section.newCrc(at.index);
  }

  decode(volume: number, block: number, which: 'new' | 'old', dst: Uint8Array, dstOffset: number): void {
    const at = this.blocksOf(volume).get(block);
    assert(at, `a block decoded from a pack is one it holds (pack ${this.path} has no block ${block} of volume ${volume})`);
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
    if (h.forward !== FORWARD.PACK && fwd !== 0) throw corrupt(path, at, `section ${s} holds forward encodings in a pack whose forward increment is not in it`);
    sections.push(new PackSection(volume, body, start, n, fwd, bwd, h.forward));
    blocks += n;
    at = start + bodyBytes;
  }
  if (at !== buf.byteLength) throw corrupt(path, at, `${buf.byteLength - at} unexpected bytes after the last section`);
  if (blocks !== h.changedBlocks) throw corrupt(path, 0, `header says ${h.changedBlocks} changed blocks, sections hold ${blocks}`);
  return new Pack(path, h, packHeaderCrc(buf), sections, buf.byteLength);
}


export const packPath = (dir: string, firstSeq: number, lastSeq: number) => joinPath(dir, packName(firstSeq, lastSeq));
