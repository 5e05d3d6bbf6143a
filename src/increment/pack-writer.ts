// Writing one pack file: sections appended as they are built (each takes its place before it is
// written, so several can be in flight), then the header, a sync, the rename from the temporary name
// and a sync of the directory. A pack that exists under its own name is complete; a temporary one is
// removed on failure here, and by recovery after a crash. The window builder and consolidation both
// write packs through it.
import { assert } from '../errors.js';
import { joinPath, writeAsync, writevAsync, type Storage, type StorageFile } from '../storage/storage.js';
import { sectionLayout } from './block-encoding.js';
import { encodePackHeader, encodeSectionHeader, PACK_HEADER_BYTES, packHeaderCrc, packName, SECTION_HEADER_BYTES, type PackHeader } from './pack.js';
import type { SectionPlacement } from './sections.js';

export interface BuiltPack {
  name: string;
  path: string;
  header: PackHeader;
  headerCrc: number;
  sections: SectionPlacement[];
  bytes: number;
}

/** What a section's build produced: the sizes of its encodings and the CRC32C of its body. */
export interface SectionSums {
  fwdBytes: number;
  bwdBytes: number;
  bodyCrc: number;
}

export class PackWriter {
  readonly name: string;
  readonly path: string;
  private readonly tmpPath: string;
  private readonly file: StorageFile;
  private filePos = PACK_HEADER_BYTES;
  private readonly sections: SectionPlacement[] = [];
  private fwdTotal = 0;
  private bwdTotal = 0;
  private blocks = 0;
  private done = false;

  constructor(private readonly storage: Storage, private readonly dir: string, readonly firstSeq: number, readonly lastSeq: number) {
    assert(Number.isSafeInteger(firstSeq) && firstSeq >= 1 && lastSeq >= firstSeq, `a pack covers seqs first..last with 1 <= first <= last (${firstSeq}..${lastSeq})`);
    this.name = packName(firstSeq, lastSeq);
    this.path = joinPath(dir, this.name);
    this.tmpPath = `${this.path}.tmp`;
    this.file = storage.open(this.tmpPath, 'create');
    this.file.truncate(0);
  }

  /** Appends one section whose body (block numbers, offsets, encodings) is `body`. */
  async addSection(volume: number, blocks: number[], sums: SectionSums, body: Buffer): Promise<void> {
    assert(!this.done, `pack ${this.name} takes no section after it is finished`);
    assert(sums.fwdBytes === 0, `pack ${this.name} is written without forward encodings`);
    const { bodyBytes } = sectionLayout(blocks.length, sums.fwdBytes, sums.bwdBytes);
    assert(body.byteLength >= bodyBytes, `a section body holds its ${bodyBytes} bytes`);
    const header = encodeSectionHeader(volume, blocks.length, sums.fwdBytes, sums.bwdBytes, sums.bodyCrc);
    // The place is taken before the write, so sections go in in the order they finish.
    const at = this.filePos;
    this.filePos += SECTION_HEADER_BYTES + bodyBytes;
    this.sections.push({ volume, blocks, bodyPos: at + SECTION_HEADER_BYTES, bodyBytes, fwdBytes: sums.fwdBytes, bwdBytes: sums.bwdBytes });
    this.fwdTotal += sums.fwdBytes;
    this.bwdTotal += sums.bwdBytes;
    this.blocks += blocks.length;
    await writevAsync(this.file, [header, body.subarray(0, bodyBytes)], at);
  }

  /** Writes the header, makes the pack durable and gives it its name. */
  async finish(h: Pick<PackHeader, 't1' | 't2' | 'blockSize' | 'writes' | 'bytesWritten' | 'forward'>): Promise<BuiltPack> {
    assert(!this.done, `pack ${this.name} is finished once`);
    this.done = true;
    const header: PackHeader = {
      firstSeq: this.firstSeq, lastSeq: this.lastSeq, t1: h.t1, t2: h.t2, blockSize: h.blockSize, sections: this.sections.length,
      writes: h.writes, forward: h.forward, bytesWritten: h.bytesWritten, changedBlocks: this.blocks, fwdBytes: this.fwdTotal, bwdBytes: this.bwdTotal,
    };
    const headerBuf = encodePackHeader(header);
    try {
      await writeAsync(this.file, headerBuf, 0);
      await this.file.sync();
    } finally {
      this.file.close();
    }
    this.storage.rename(this.tmpPath, this.path);
    await this.storage.syncDir(this.dir);
    return { name: this.name, path: this.path, header, headerCrc: packHeaderCrc(headerBuf), sections: this.sections, bytes: this.filePos };
  }

  /** Gives up: the temporary file is removed (whatever went wrong, nothing was renamed). */
  abort(): void {
    if (!this.done) {
      this.done = true;
      try {
        this.file.close();
      } catch {
        // already closed by a failed finish
      }
    }
    if (this.storage.exists(this.tmpPath)) this.storage.remove(this.tmpPath);
  }
}
