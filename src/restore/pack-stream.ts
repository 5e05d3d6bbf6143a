// Reading packs one after another through one reusable buffer, for a restore: it visits every pack
// after its target once and keeps none of them. The checks are readPack's (parsePack); only the
// memory differs (a fresh buffer per pack costs its page faults, about 3-5x the read itself from
// the page cache). The sections returned are valid until the next read.
import { parsePack, type PackHeader, type PackSection } from '../increment/pack.js';
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
    const pack = parsePack(path, this.buf.subarray(0, size));
    return { header: pack.header, sections: pack.sections };
  }
}
