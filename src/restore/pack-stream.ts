// Reading packs one after another through one reusable buffer, for a restore: it visits every pack
// after its target once and keeps none of them. The checks are those of readPack
// (src/increment/pack.ts); only the memory differs (a fresh buffer per pack costs its page faults,
// about 3-5x the read itself from the page cache). The sections returned are valid until the next read.
import { crc32c } from '../binary.js';
import { corrupt } from '../errors.js';
import { decodePackHeader, PACK_HEADER_BYTES, PackSection, SECTION_HEADER_BYTES, SECTION_MAGIC, sectionBodyBytes, type PackHeader } from '../increment/pack.js';
import type { Storage } from '../storage/storage.js';

export interface StreamedPack {
  header: PackHeader;
  sections: PackSection[];
}

export class PackStream {
  private buf = Buffer.allocUnsafe(0);

  constructor(private readonly storage: Storage) {}

  /** Reads and verifies the whole pack at `path`. Throws a CORRUPT error naming the file and byte position. */
  read(path: string): StreamedPack {
    const f = this.storage.open(path, 'read');
    let size: number;
    try {
      size = f.size();
      if (this.buf.byteLength < size) this.buf = Buffer.allocUnsafe(Math.max(size, Math.min(2 * this.buf.byteLength, 128 * 2 ** 20)));
      size = f.read(this.buf, 0, 0, size);
    } finally {
      f.close();
    }
    const buf = this.buf.subarray(0, size);
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
    return { header: h, sections };
  }
}
