// Reading a pack a section at a time: its table of sections (header, section headers and the first
// and last block of each, without the bodies), then any section's body on its own, checked. What a
// pack needs in memory is then one section (at most a 2 MiB chunk of blocks), whatever the pack's
// size: the merge streams packs this way, and `rewind diff` reads only block lists.
import { crc32c, getU64 } from '../encoding/fields.js';
import { corrupt } from '../errors.js';
import type { Storage, StorageFile } from '../storage/storage.js';
import { BLOCK_NUMBER_BYTES, FORWARD, sectionBodyBytes } from './block-encoding.js';
import { decodePackHeader, PACK_HEADER_BYTES, packHeaderCrc, PackSection, SECTION_HEADER_BYTES, SECTION_MAGIC, type PackHeader } from './pack.js';

/** Where one section of a pack lies, and the range of blocks it holds. */
export interface SectionEntry {
  volume: number;
  blockCount: number;
  fwdBytes: number;
  bwdBytes: number;
  bodyCrc: number;
  bodyPos: number;
  bodyBytes: number;
  firstBlock: number;
  lastBlock: number;
}

export interface SectionTable {
  path: string;
  header: PackHeader;
  headerCrc: number;
  sections: SectionEntry[];
  bytes: number;
}

/** Reads a pack's header and section headers (checksums checked), not the bodies. Throws CORRUPT naming the file and position. */
export function readSectionTable(storage: Storage, path: string): SectionTable {
  const f = storage.open(path, 'read');
  try {
    const size = f.size();
    const head = Buffer.allocUnsafe(PACK_HEADER_BYTES);
    if (f.read(head, 0, 0, PACK_HEADER_BYTES) < PACK_HEADER_BYTES) throw corrupt(path, 0, 'pack shorter than its header');
    const h = decodePackHeader(head);
    if (typeof h === 'string') throw corrupt(path, 0, h);
    const sections: SectionEntry[] = [];
    const sh = Buffer.allocUnsafe(SECTION_HEADER_BYTES);
    const edge = Buffer.allocUnsafe(BLOCK_NUMBER_BYTES);
    let at = PACK_HEADER_BYTES;
    let blocks = 0;
    for (let s = 0; s < h.sections; s++) {
      if (at + SECTION_HEADER_BYTES > size || f.read(sh, at) < SECTION_HEADER_BYTES) throw corrupt(path, at, `pack ends before section ${s}`);
      if (sh.readUInt32LE(0) !== SECTION_MAGIC) throw corrupt(path, at, `bad section magic (section ${s})`);
      if (crc32c(sh.subarray(0, 28)) !== sh.readUInt32LE(28)) throw corrupt(path, at, `section ${s} header checksum mismatch`);
      const n = sh.readUInt32LE(12);
      const fwdBytes = sh.readUInt32LE(16);
      if (h.forward !== FORWARD.PACK && fwdBytes !== 0) throw corrupt(path, at, `section ${s} holds forward encodings in a pack whose forward increment is not in it`);
      const bwdBytes = sh.readUInt32LE(20);
      const bodyPos = at + SECTION_HEADER_BYTES;
      const bodyBytes = sectionBodyBytes(n, fwdBytes, bwdBytes);
      if (bodyPos + bodyBytes > size) throw corrupt(path, at, `section ${s} runs past the end of the pack`);
      let firstBlock = 0;
      let lastBlock = -1;
      if (n > 0) {
        f.read(edge, bodyPos);
        firstBlock = getU64(edge, 0);
        f.read(edge, bodyPos + BLOCK_NUMBER_BYTES * (n - 1));
        lastBlock = getU64(edge, 0);
        if (lastBlock < firstBlock) throw corrupt(path, bodyPos, `block numbers of section ${s} do not ascend`);
      }
      sections.push({ volume: sh.readUInt32LE(8), blockCount: n, fwdBytes, bwdBytes, bodyCrc: sh.readUInt32LE(24), bodyPos, bodyBytes, firstBlock, lastBlock });
      blocks += n;
      at = bodyPos + bodyBytes;
    }
    if (at !== size) throw corrupt(path, at, `${size - at} unexpected bytes after the last section`);
    if (blocks !== h.changedBlocks) throw corrupt(path, 0, `header says ${h.changedBlocks} changed blocks, sections hold ${blocks}`);
    return { path, header: h, headerCrc: packHeaderCrc(head), sections, bytes: size };
  } finally {
    f.close();
  }
}

/** Reads one section's body from an open pack file and checks it: its CRC32C, and block numbers that ascend. */
export function readSection(f: StorageFile, table: SectionTable, e: SectionEntry): PackSection {
  const body = Buffer.allocUnsafe(e.bodyBytes);
  if (f.read(body, e.bodyPos) < e.bodyBytes) throw corrupt(table.path, e.bodyPos, 'section cut short');
  if (crc32c(body) !== e.bodyCrc) throw corrupt(table.path, e.bodyPos, 'section body checksum mismatch');
  const section = new PackSection(e.volume, body, e.bodyPos, e.blockCount, e.fwdBytes, e.bwdBytes, table.header.forward);
  for (let i = 1; i < section.blocks.length; i++) {
    if (section.blocks[i] <= section.blocks[i - 1]) throw corrupt(table.path, e.bodyPos + BLOCK_NUMBER_BYTES * i, 'block numbers of a section do not ascend');
  }
  return section;
}

/** The block numbers one volume's sections of a pack hold, in file order (bodies' block lists read, not checked against their CRC). */
export function readPackBlocks(storage: Storage, path: string, volume: number): number[] {
  const table = readSectionTable(storage, path);
  const out: number[] = [];
  const f = storage.open(path, 'read');
  try {
    for (const e of table.sections) {
      if (e.volume !== volume || e.blockCount === 0) continue;
      const list = Buffer.allocUnsafe(BLOCK_NUMBER_BYTES * e.blockCount);
      f.read(list, e.bodyPos);
      let prev = -1;
      for (let i = 0; i < e.blockCount; i++) {
        const b = getU64(list, BLOCK_NUMBER_BYTES * i);
        if (b <= prev) throw corrupt(path, e.bodyPos + BLOCK_NUMBER_BYTES * i, 'block numbers of a section do not ascend');
        out.push(b);
        prev = b;
      }
    }
  } finally {
    f.close();
  }
  return out;
}
