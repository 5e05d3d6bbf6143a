// Increment packs promise: a pack built to the documented layout (header, then per volume a section
// header and a body of block numbers, forward and backward offset tables and zero-run encodings)
// reads back with readPack, and every block decodes to its contents after the window ('new') and
// before it ('old' = new XOR backward delta); any single flipped byte — pack header, section
// header or body — makes readPack throw CORRUPT naming the file and the byte position of the part
// that failed its check. The encodings here come from the plain-TypeScript reference kernels
// (src/kernels/reference.ts), independent of the WASM builds and of the increment builder.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/encoding/fields.js';
import { RewindError } from '../../src/errors.js';
import { decodeBlock, FORWARD, sectionBodyBytes } from '../../src/increment/block-encoding.js';
import {
  encodePackHeader, encodeSectionHeader, listPacks, packName, PACK_HEADER_BYTES, readPack, SECTION_HEADER_BYTES, type PackHeader,
} from '../../src/increment/pack.js';
import { encodedBlockBytesMax } from '../../src/kernels/format.js';
import { deltaEncode, zeroRunEncode } from '../../src/kernels/reference.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { prng } from '../../src/prng.js';


const B = 512;
const CHUNK = 16;

/** A block with runs of zero chunks between random ones (so zero-run tokens of every kind appear). */
function sparseBlock(rand: () => number, zeroShare: number): Buffer {
  const b = Buffer.alloc(B);
  for (let c = 0; c < B / CHUNK; c++) {
    if (rand() < zeroShare) continue;
    for (let i = 0; i < CHUNK; i++) b[c * CHUNK + i] = (rand() * 256) | 0;
  }
  return b;
}

interface SectionSpec {
  volume: number;
  blocks: number[];
  oldData: Buffer[];
  newData: Buffer[];
}

interface Built {
  bytes: Buffer;
  header: PackHeader;
  /** Byte position of each section header. */
  sectionAt: number[];
  bodyBytes: number[];
}

/** Encodes one section body exactly as the layout says, with the reference encoders. */
function encodeSection(s: SectionSpec): { body: Buffer; fwd: number; bwd: number } {
  const n = s.blocks.length;
  const encMax = encodedBlockBytesMax(B) * n;
  const mem = new Uint8Array(2 * n * B + 2 * encMax + 2 * 4 * (n + 1));
  const newPtr = 0;
  const oldPtr = n * B;
  const fwdOut = 2 * n * B;
  const bwdOut = fwdOut + encMax;
  const fwdOff = bwdOut + encMax;
  const bwdOff = fwdOff + 4 * (n + 1);
  s.newData.forEach((d, i) => mem.set(d, newPtr + i * B));
  s.oldData.forEach((d, i) => mem.set(d, oldPtr + i * B));
  const fwd = zeroRunEncode(mem, newPtr, n, B, fwdOut, fwdOff);
  const bwd = deltaEncode(mem, oldPtr, newPtr, n, B, bwdOut, bwdOff);
  const blockNumbers = Buffer.alloc(8 * n);
  s.blocks.forEach((b, i) => blockNumbers.writeBigUInt64LE(BigInt(b), 8 * i));
  const body = Buffer.concat([
    blockNumbers,
    Buffer.from(mem.subarray(fwdOff, fwdOff + 4 * (n + 1))),
    Buffer.from(mem.subarray(bwdOff, bwdOff + 4 * (n + 1))),
    Buffer.from(mem.subarray(fwdOut, fwdOut + fwd)),
    Buffer.from(mem.subarray(bwdOut, bwdOut + bwd)),
  ]);
  expect(body.byteLength).toBe(sectionBodyBytes(n, fwd, bwd));
  return { body, fwd, bwd };
}

function buildPack(sections: SectionSpec[], overrideHeader: Partial<PackHeader> = {}): Built {
  const parts: Buffer[] = [];
  const sectionAt: number[] = [];
  const bodyBytes: number[] = [];
  let at = PACK_HEADER_BYTES;
  let fwdTotal = 0;
  let bwdTotal = 0;
  let blocks = 0;
  for (const s of sections) {
    const { body, fwd, bwd } = encodeSection(s);
    parts.push(encodeSectionHeader(s.volume, s.blocks.length, fwd, bwd, crc32c(body)), body);
    sectionAt.push(at);
    bodyBytes.push(body.byteLength);
    at += SECTION_HEADER_BYTES + body.byteLength;
    fwdTotal += fwd;
    bwdTotal += bwd;
    blocks += s.blocks.length;
  }
  const header: PackHeader = {
    firstSeq: 101, lastSeq: 117, t1: 1_800_000_000_123, t2: 1_800_000_004_567, blockSize: B, sections: sections.length,
    writes: 17, forward: FORWARD.PACK, bytesWritten: 17 * 700, changedBlocks: blocks, fwdBytes: fwdTotal, bwdBytes: bwdTotal, ...overrideHeader,
  };
  return { bytes: Buffer.concat([encodePackHeader(header), ...parts]), header, sectionAt, bodyBytes };
}

function specs(seed: number): SectionSpec[] {
  const rand = prng(seed);
  const vol0Blocks = [0, 7, 8, 200];
  const s0: SectionSpec = {
    volume: 0,
    blocks: vol0Blocks,
    oldData: vol0Blocks.map(() => sparseBlock(rand, 0.5)),
    newData: vol0Blocks.map(() => sparseBlock(rand, 0.5)),
  };
  s0.newData[1] = Buffer.alloc(B); // a block zeroed by the window
  s0.oldData[2] = Buffer.from(s0.newData[2]); // a block rewritten with the same bytes (empty delta)
  s0.oldData[3] = Buffer.alloc(B); // a block written for the first time
  s0.newData[3] = sparseBlock(rand, 0); // no zero chunk at all
  const s1: SectionSpec = { volume: 3, blocks: [5], oldData: [sparseBlock(rand, 0.3)], newData: [sparseBlock(rand, 0.8)] };
  return [s0, s1];
}

let dir: string;
let file: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-pack-'));
  file = path.join(dir, packName(101, 117));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function expectCorrupt(fn: () => unknown, position: number, what?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected CORRUPT at byte ${position}`).toBeInstanceOf(RewindError);
  expect((err as RewindError).code).toBe('CORRUPT');
  expect((err as RewindError).message).toContain(`${file} at byte ${position}:`);
  if (what) expect((err as RewindError).message).toMatch(what);
}

describe('reading a pack', () => {
  it('reads back the header, the sections and their block numbers', () => {
    const ss = specs(1);
    const built = buildPack(ss);
    fs.writeFileSync(file, built.bytes);
    const pack = readPack(nodeStorage, file);
    expect(pack.path).toBe(file);
    expect(pack.header).toEqual(built.header);
    expect(pack.headerCrc).toBe(built.bytes.readUInt32LE(92));
    expect(pack.bytes).toBe(built.bytes.byteLength);
    expect(pack.sections.map((s) => [s.volume, s.blocks])).toEqual([[0, [0, 7, 8, 200]], [3, [5]]]);
    expect([...pack.blocksOf(0).keys()]).toEqual([0, 7, 8, 200]);
    expect([...pack.blocksOf(3).keys()]).toEqual([5]);
    expect(pack.blocksOf(1).size).toBe(0);
  });

  it("decodes every block to its contents after the window ('new') and before it ('old')", () => {
    const ss = specs(2);
    fs.writeFileSync(file, buildPack(ss).bytes);
    const pack = readPack(nodeStorage, file);
    const dst = Buffer.alloc(B + 100, 0xcc);
    for (const s of ss) {
      s.blocks.forEach((block, i) => {
        dst.fill(0xcc);
        pack.decode(s.volume, block, 'new', dst, 50);
        expect(dst.subarray(50, 50 + B).equals(s.newData[i]), `new ${s.volume}/${block}`).toBe(true);
        dst.fill(0xcc);
        pack.decode(s.volume, block, 'old', dst, 50);
        expect(dst.subarray(50, 50 + B).equals(s.oldData[i]), `old ${s.volume}/${block}`).toBe(true);
        // Nothing outside the block is touched.
        expect(dst.subarray(0, 50).every((x) => x === 0xcc) && dst.subarray(50 + B).every((x) => x === 0xcc)).toBe(true);
      });
    }
    expect(() => pack.decode(0, 1, 'new', dst, 0)).toThrow(/no block 1 of volume 0/);
  });

  it('reads a format 1 pack (version 1, forward encodings in the pack) as forward PACK', () => {
    const ss = specs(3);
    const built = buildPack(ss);
    const v1 = Buffer.from(built.bytes);
    v1.writeUInt16LE(1, 4);
    v1.writeUInt32LE(0, 52);
    v1.writeUInt32LE(crc32c(v1.subarray(0, 92)), 92);
    fs.writeFileSync(file, v1);
    const pack = readPack(nodeStorage, file);
    expect(pack.header.forward).toBe(FORWARD.PACK);
    const dst = Buffer.alloc(B);
    pack.decode(ss[0].volume, ss[0].blocks[1], 'new', dst, 0);
    expect(dst.equals(ss[0].newData[1])).toBe(true);
  });

  it('refuses a pack of an unknown version or forward kind, and forward encodings in a pack that says they are in the journal', () => {
    const ss = specs(4);
    const v3 = Buffer.from(buildPack(ss).bytes);
    v3.writeUInt16LE(3, 4);
    v3.writeUInt32LE(crc32c(v3.subarray(0, 92)), 92);
    fs.writeFileSync(file, v3);
    expectCorrupt(() => readPack(nodeStorage, file), 0, /pack version 3 is not supported/);
    fs.writeFileSync(file, buildPack(ss, { forward: 7 as never }).bytes);
    expectCorrupt(() => readPack(nodeStorage, file), 0, /unknown forward kind 7/);
    fs.writeFileSync(file, buildPack(ss, { forward: FORWARD.JOURNAL }).bytes);
    expectCorrupt(() => readPack(nodeStorage, file), PACK_HEADER_BYTES, /holds forward encodings/);
  });

  it('reads a pack with no sections (a window whose writes changed nothing)', () => {
    fs.writeFileSync(file, buildPack([]).bytes);
    const pack = readPack(nodeStorage, file);
    expect(pack.sections).toEqual([]);
    expect(pack.header.changedBlocks).toBe(0);
  });

  it('names packs <firstSeq>-<lastSeq>.pack and lists them in sequence order', () => {
    for (const [a, b] of [[30, 40], [1, 9], [10, 29]]) fs.writeFileSync(path.join(dir, packName(a, b)), '');
    fs.writeFileSync(path.join(dir, packName(41, 50) + '.tmp'), '');
    expect(packName(1, 9)).toBe('0000000000000001-0000000000000009.pack');
    expect(listPacks(nodeStorage, dir).map((p) => [p.firstSeq, p.lastSeq])).toEqual([[1, 9], [10, 29], [30, 40]]);
  });
});

describe('damage', () => {
  it('any single flipped byte makes readPack throw CORRUPT with the file and the position of the failing part', () => {
    const built = buildPack(specs(3));
    const good = built.bytes;
    const [s0, s1] = built.sectionAt;
    /** Where readPack reports a flip at byte i: the pack header, a section header, or a section body. */
    const reportedAt = (i: number): number => {
      if (i < PACK_HEADER_BYTES) return 0;
      for (let s = built.sectionAt.length - 1; s >= 0; s--) {
        const at = built.sectionAt[s];
        if (i >= at) return i < at + SECTION_HEADER_BYTES ? at : at + SECTION_HEADER_BYTES;
      }
      throw new Error('unreachable');
    };
    expect([reportedAt(0), reportedAt(95), reportedAt(s0), reportedAt(s0 + 31), reportedAt(s0 + 32), reportedAt(s1 - 1), reportedAt(s1 + 5), reportedAt(good.byteLength - 1)])
      .toEqual([0, 0, s0, s0, s0 + 32, s0 + 32, s1, s1 + 32]);
    for (let i = 0; i < good.byteLength; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 1 << (i % 8);
      fs.writeFileSync(file, bad);
      expectCorrupt(() => readPack(nodeStorage, file), reportedAt(i));
    }
  });

  it.each([
    ['pack header', 10, /pack header checksum mismatch/],
    ['pack magic', 0, /bad pack magic/],
    ['section magic', 'section0', /bad section magic \(section 0\)/],
    ['section header field', 'section1+12', /section 1 header checksum mismatch/],
    ['section body', 'body0+40', /section 0 body checksum mismatch/],
  ] as const)('says what failed: %s', (_what, where, message) => {
    const built = buildPack(specs(4));
    const at = typeof where === 'number' ? where
      : where === 'section0' ? built.sectionAt[0]
      : where === 'section1+12' ? built.sectionAt[1] + 12
      : built.sectionAt[0] + SECTION_HEADER_BYTES + 40;
    const bad = Buffer.from(built.bytes);
    bad[at] ^= 0xff;
    fs.writeFileSync(file, bad);
    expectCorrupt(() => readPack(nodeStorage, file), typeof where === 'number' ? 0 : where === 'section0' ? built.sectionAt[0] : where === 'section1+12' ? built.sectionAt[1] : built.sectionAt[0] + SECTION_HEADER_BYTES, message);
  });

  it('rejects a pack cut short or with bytes after the last section', () => {
    const built = buildPack(specs(5));
    fs.writeFileSync(file, built.bytes.subarray(0, built.bytes.byteLength - 1));
    expectCorrupt(() => readPack(nodeStorage, file), built.sectionAt[1], /section 1 runs past the end of the pack/);
    fs.writeFileSync(file, built.bytes.subarray(0, built.sectionAt[1] + 10));
    expectCorrupt(() => readPack(nodeStorage, file), built.sectionAt[1], /pack ends before section 1/);
    fs.writeFileSync(file, built.bytes.subarray(0, 50));
    expectCorrupt(() => readPack(nodeStorage, file), 0, /incomplete pack header/);
    fs.writeFileSync(file, Buffer.concat([built.bytes, Buffer.from([0])]));
    expectCorrupt(() => readPack(nodeStorage, file), built.bytes.byteLength, /1 unexpected bytes after the last section/);
  });

  it('rejects a header whose block count disagrees with its sections (consistently checksummed)', () => {
    const built = buildPack(specs(6), { changedBlocks: 6 });
    fs.writeFileSync(file, built.bytes);
    expectCorrupt(() => readPack(nodeStorage, file), 0, /header says 6 changed blocks, sections hold 5/);
  });

  it('refuses to decode a block whose encoding is malformed even when its checksums match', () => {
    const ss = specs(7);
    const built = buildPack(ss.slice(1));
    // Rewrite section 0's forward encoding of its one block as an empty (0, 0) token, then fix the checksums.
    const at = built.sectionAt[0];
    const body = Buffer.from(built.bytes.subarray(at + SECTION_HEADER_BYTES));
    const fwdData = 8 + 2 * 4 * 2;
    body.fill(0, fwdData, fwdData + 8);
    const sh = Buffer.from(built.bytes.subarray(at, at + SECTION_HEADER_BYTES));
    const fixed = Buffer.concat([built.bytes.subarray(0, at), encodeSectionHeader(sh.readUInt32LE(8), 1, sh.readUInt32LE(16), sh.readUInt32LE(20), crc32c(body)), body]);
    fs.writeFileSync(file, fixed);
    const pack = readPack(nodeStorage, file);
    expectCorrupt(() => pack.decode(3, 5, 'new', Buffer.alloc(B), 0), 0, /malformed encoding of block 5 \(volume index 3\)/);
  });
});

describe('block codec', () => {
  it('decodeBlock accepts exactly one block of tokens and rejects anything else', () => {
    const rand = prng(8);
    const block = sparseBlock(rand, 0.5);
    const mem = new Uint8Array(B + encodedBlockBytesMax(B) + 8);
    mem.set(block, 0);
    const n = zeroRunEncode(mem, 0, 1, B, B, B + encodedBlockBytesMax(B));
    const enc = mem.subarray(B, B + n);
    const dst = Buffer.alloc(B, 0x77);
    expect(decodeBlock(enc, 0, n, dst, 0, B, false)).toBe(true);
    expect(dst.equals(block)).toBe(true);
    expect(decodeBlock(enc, 0, n - 1, Buffer.alloc(B), 0, B, false)).toBe(false); // cut short
    expect(decodeBlock(Buffer.concat([enc, Buffer.alloc(8)]), 0, n + 8, Buffer.alloc(B), 0, B, false)).toBe(false); // trailing token
    // XOR mode applies a delta over the bytes already there.
    const x = Buffer.from(block);
    expect(decodeBlock(enc, 0, n, x, 0, B, true)).toBe(true);
    expect(x.every((v) => v === 0)).toBe(true);
  });
});
