// The block encoding's TypeScript decoder (src/increment/block-encoding.ts) promises the bytes of
// the kernels' reference twin (src/kernels/reference.ts zeroRunDecode) on any well-formed block:
// plain and XOR decoding, at aligned and unaligned offsets on both sides (its word-wide XOR path
// and its byte path), literal runs of every length mod 4, all-zero blocks; a section body decodes
// to the old contents through either backward encoding (old XOR new, or the old block itself); and
// a token stream that is cut short, runs past its end or has bytes left over is refused.
import { describe, expect, it } from 'vitest';
import { BACKWARD_RAW, decodeBlock, decodeSectionBlock, FORWARD, sectionLayout, sectionNewCrc, xorInto } from '../../src/increment/block-encoding.js';
import { encodedBlockBytesMax } from '../../src/kernels/format.js';
import { deltaEncode, xor as refXor, zeroRunDecode, zeroRunEncode } from '../../src/kernels/reference.js';
import { prng } from '../../src/prng.js';

const B = 512;
const CHUNK = 16;

/** A block with zero chunks between random ones; `zeroShare` 1 is all zero, 0 has no zero chunk. */
function sparseBlock(rand: () => number, zeroShare: number): Buffer {
  const b = Buffer.alloc(B);
  for (let c = 0; c < B / CHUNK; c++) {
    if (rand() >= zeroShare) for (let i = 0; i < CHUNK; i++) b[c * CHUNK + i] = (rand() * 256) | 0;
  }
  return b;
}

/** The reference encoding of one block. */
function encode(block: Uint8Array): Buffer {
  const max = encodedBlockBytesMax(B);
  const mem = new Uint8Array(B + max + 8);
  mem.set(block, 0);
  const n = zeroRunEncode(mem, 0, 1, B, B, B + max);
  return Buffer.from(mem.subarray(B, B + n));
}

/** Hand-made tokens: [zero bytes, literal bytes] pairs, literals filled from `rand`. */
function tokens(rand: () => number, runs: [number, number][]): Buffer {
  const parts: Buffer[] = [];
  for (const [zeros, lits] of runs) {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(zeros, 0);
    h.writeUInt32LE(lits, 4);
    const l = Buffer.alloc(lits);
    for (let i = 0; i < lits; i++) l[i] = 1 + ((rand() * 255) | 0);
    parts.push(h, l);
  }
  return Buffer.concat(parts);
}

/** What the reference twin leaves in a destination that held `before`, or null if it refuses. */
function reference(enc: Uint8Array, before: Uint8Array, xorMode: 0 | 1): Uint8Array | null {
  const mem = new Uint8Array(enc.byteLength + B);
  mem.set(enc, 0);
  mem.set(before, enc.byteLength);
  const used = zeroRunDecode(mem, 0, enc.byteLength, enc.byteLength, B, xorMode);
  return used === enc.byteLength ? mem.slice(enc.byteLength) : null;
}

/** Decodes `enc` placed at `srcShift` in its buffer into a destination at `dstShift`, as the module does. */
function decoded(enc: Buffer, before: Uint8Array, xor: boolean, srcShift: number, dstShift: number): Uint8Array | null {
  const src = Buffer.alloc(srcShift + enc.byteLength + 3, 0xee);
  enc.copy(src, srcShift);
  const dst = Buffer.alloc(dstShift + B + 3, 0xcc);
  dst.set(before, dstShift);
  if (!decodeBlock(src, srcShift, srcShift + enc.byteLength, dst, dstShift, B, xor)) return null;
  // Nothing outside the block is touched.
  expect(dst.subarray(0, dstShift).every((x) => x === 0xcc) && dst.subarray(dstShift + B).every((x) => x === 0xcc)).toBe(true);
  return dst.subarray(dstShift, dstShift + B);
}

const SHIFTS = [[0, 0], [1, 0], [0, 2], [3, 1], [4, 8]] as const;

describe('decodeBlock against the reference twin', () => {
  it('random blocks, plain and XOR, at aligned and unaligned offsets', () => {
    const rand = prng(11);
    for (let round = 0; round < 200; round++) {
      const share = [0, 0.1, 0.5, 0.9, 1][round % 5];
      const block = sparseBlock(rand, share);
      const enc = encode(block);
      const before = sparseBlock(rand, 0.3);
      for (const [s, d] of SHIFTS) {
        for (const xor of [false, true]) {
          const want = reference(enc, before, xor ? 1 : 0);
          expect(want, `reference accepts round ${round}`).not.toBeNull();
          expect(Buffer.from(decoded(enc, before, xor, s, d)!).equals(Buffer.from(want!)), `round ${round} shift ${s}/${d} xor ${xor}`).toBe(true);
        }
      }
    }
  });

  it('an all-zero block is one token; plain decoding writes zeros, XOR leaves the bytes alone', () => {
    const rand = prng(12);
    const enc = encode(Buffer.alloc(B));
    expect(enc.byteLength).toBe(8);
    const before = sparseBlock(rand, 0);
    expect(Buffer.from(decoded(enc, before, false, 0, 0)!).equals(Buffer.alloc(B))).toBe(true);
    expect(Buffer.from(decoded(enc, before, true, 1, 3)!).equals(before)).toBe(true);
  });

  it('literal runs of every length mod 4, and every length around the word-wide threshold', () => {
    const rand = prng(13);
    for (let lits = 1; lits <= 70; lits++) {
      // Literals not on chunk bounds are valid input (the decoder accepts any exact cover).
      const runs: [number, number][] = [[5, lits], [B - 5 - lits - 40, 40]];
      const enc = tokens(rand, runs);
      const before = sparseBlock(rand, 0.2);
      for (const [s, d] of SHIFTS) {
        for (const xor of [false, true]) {
          const want = reference(enc, before, xor ? 1 : 0)!;
          expect(Buffer.from(decoded(enc, before, xor, s, d)!).equals(Buffer.from(want)), `lits ${lits} shift ${s}/${d} xor ${xor}`).toBe(true);
        }
      }
    }
  });
});

describe('decodeBlock refuses what does not cover exactly one block', () => {
  const rand = prng(14);
  const good = encode(sparseBlock(rand, 0.5));
  const refuse = (enc: Buffer, end = enc.byteLength) => {
    for (const xor of [false, true]) expect(decodeBlock(enc, 0, end, Buffer.alloc(B), 0, B, xor)).toBe(false);
    expect(reference(enc.subarray(0, end), Buffer.alloc(B), 0), 'the reference twin refuses it too').toBeNull();
  };

  it.each([
    ['cut short by a byte', good.subarray(0, good.byteLength - 1)],
    ['cut inside a token header', good.subarray(0, 4)],
    ['empty', good.subarray(0, 0)],
    ['a trailing token', Buffer.concat([good, tokens(rand, [[0, 8]])])],
    ['a trailing byte', Buffer.concat([good, Buffer.from([0])])],
    ['tokens covering too little', tokens(rand, [[100, 100]])],
    ['tokens covering too much', tokens(rand, [[B - 8, 16]])],
    ['zeros alone past the block', tokens(rand, [[B + 16, 0]])],
    ['an empty (0, 0) token', Buffer.concat([tokens(rand, [[0, 0]]), tokens(rand, [[B, 0]])])],
  ])('%s', (_what, enc) => {
    refuse(Buffer.from(enc));
  });

  it('a literal run that says more bytes than the range holds', () => {
    const enc = tokens(rand, [[0, B]]);
    refuse(enc, enc.byteLength - 1);
    refuse(Buffer.concat([enc.subarray(0, 8), enc.subarray(8, 100)]));
  });

  it('a range outside the buffer', () => {
    expect(decodeBlock(good, -1, good.byteLength, Buffer.alloc(B), 0, B, false)).toBe(false);
    expect(decodeBlock(good, 0, good.byteLength + 1, Buffer.alloc(B), 0, B, false)).toBe(false);
    expect(decodeBlock(good, 5, 4, Buffer.alloc(B), 0, B, false)).toBe(false);
  });
});

describe('xorInto', () => {
  it('equals the reference XOR at every alignment and length', () => {
    const rand = prng(15);
    for (let len = 0; len <= 80; len++) {
      for (const [s, d] of SHIFTS) {
        const src = Buffer.alloc(s + len);
        const dst = Buffer.alloc(d + len);
        for (let i = 0; i < src.length; i++) src[i] = (rand() * 256) | 0;
        for (let i = 0; i < dst.length; i++) dst[i] = (rand() * 256) | 0;
        const mem = new Uint8Array(2 * len);
        mem.set(dst.subarray(d), 0);
        mem.set(src.subarray(s), len);
        refXor(mem, 0, 0, len, len);
        xorInto(dst, d, src, s, len);
        expect(Buffer.from(dst.subarray(d)).equals(Buffer.from(mem.subarray(0, len))), `len ${len} shift ${s}/${d}`).toBe(true);
      }
    }
  });
});

describe('decodeSectionBlock', () => {
  /** A section body of `olds`/`news` with the backward encoding of block i raw when raw[i]. */
  function body(olds: Buffer[], news: Buffer[], raw: boolean[]): { body: Buffer; fwd: number; bwd: number } {
    const n = olds.length;
    const max = encodedBlockBytesMax(B) * n;
    const mem = new Uint8Array(2 * n * B + 2 * max + 2 * 4 * (n + 1));
    const fwdOut = 2 * n * B;
    const bwdOut = fwdOut + max;
    const fwdOff = bwdOut + max;
    const scratch = fwdOff + 4 * (n + 1);
    news.forEach((b, i) => mem.set(b, i * B));
    olds.forEach((b, i) => mem.set(b, (n + i) * B));
    const fwd = zeroRunEncode(mem, 0, n, B, fwdOut, fwdOff);
    const bwdOffsets: number[] = [];
    let bwd = 0;
    for (let i = 0; i < n; i++) {
      bwdOffsets.push((bwd | (raw[i] ? BACKWARD_RAW : 0)) >>> 0);
      bwd += raw[i]
        ? zeroRunEncode(mem, (n + i) * B, 1, B, bwdOut + bwd, scratch)
        : deltaEncode(mem, (n + i) * B, i * B, 1, B, bwdOut + bwd, scratch);
    }
    bwdOffsets.push(bwd);
    const layout = sectionLayout(n, fwd, bwd, FORWARD.PACK);
    const out = Buffer.alloc(layout.bodyBytes);
    for (let i = 0; i < n; i++) out.writeBigUInt64LE(BigInt(10 * i), 8 * i);
    Buffer.from(mem.subarray(fwdOff, fwdOff + 4 * (n + 1))).copy(out, layout.fwdOffsets);
    bwdOffsets.forEach((o, i) => out.writeUInt32LE(o, layout.bwdOffsets + 4 * i));
    Buffer.from(mem.subarray(fwdOut, fwdOut + fwd)).copy(out, layout.fwdData);
    Buffer.from(mem.subarray(bwdOut, bwdOut + bwd)).copy(out, layout.bwdData);
    return { body: out, fwd, bwd };
  }

  it('decodes new and old contents through both backward encodings', () => {
    const rand = prng(16);
    const n = 12;
    const olds = Array.from({ length: n }, (_, i) => sparseBlock(rand, [0, 0.5, 1][i % 3]));
    const news = Array.from({ length: n }, (_, i) => sparseBlock(rand, [1, 0.5, 0][i % 3]));
    const raw = Array.from({ length: n }, (_, i) => i % 2 === 0);
    const s = body(olds, news, raw);
    const layout = sectionLayout(n, s.fwd, s.bwd, FORWARD.PACK);
    expect(layout.bodyBytes).toBe(8 * n + 2 * 4 * (n + 1) + s.fwd + s.bwd);
    for (let i = 0; i < n; i++) {
      for (const shift of [0, 1, 4]) {
        const dst = Buffer.alloc(shift + B, 0xcc);
        expect(decodeSectionBlock(s.body, layout, i, 'new', dst, shift, B)).toBe(true);
        expect(dst.subarray(shift).equals(news[i]), `new ${i}`).toBe(true);
        dst.fill(0xcc);
        expect(decodeSectionBlock(s.body, layout, i, 'old', dst, shift, B)).toBe(true);
        expect(dst.subarray(shift).equals(olds[i]), `old ${i} (${raw[i] ? 'raw' : 'XOR'})`).toBe(true);
      }
    }
    expect(decodeSectionBlock(s.body, layout, -1, 'old', Buffer.alloc(B), 0, B)).toBe(false);
    expect(decodeSectionBlock(s.body, layout, n, 'new', Buffer.alloc(B), 0, B)).toBe(false);
  });

  it('a pack without forward encodings gives back old blocks whole and the new blocks\' CRCs', () => {
    const rand = prng(17);
    const n = 9;
    const olds = Array.from({ length: n }, (_, i) => sparseBlock(rand, [0, 0.5, 1][i % 3]));
    const mem = new Uint8Array(n * B + encodedBlockBytesMax(B) * n + 4 * (n + 1));
    olds.forEach((b, i) => mem.set(b, i * B));
    const encAt = n * B;
    const offAt = encAt + encodedBlockBytesMax(B) * n;
    const bwd = zeroRunEncode(mem, 0, n, B, encAt, offAt);
    for (const forward of [FORWARD.JOURNAL, FORWARD.CHAIN]) {
      const layout = sectionLayout(n, 0, bwd, forward);
      const out = Buffer.alloc(layout.bodyBytes);
      for (let i = 0; i < n; i++) out.writeUInt32LE(1000 + i, layout.fwdOffsets + 4 * i);
      Buffer.from(mem.subarray(offAt, offAt + 4 * (n + 1))).copy(out, layout.bwdOffsets);
      Buffer.from(mem.subarray(encAt, encAt + bwd)).copy(out, layout.bwdData);
      for (let i = 0; i < n; i++) {
        const dst = Buffer.alloc(B, 0xcc);
        expect(decodeSectionBlock(out, layout, i, 'old', dst, 0, B)).toBe(true);
        expect(dst.equals(olds[i]), `old ${i}`).toBe(true);
        expect(sectionNewCrc(out, layout, i)).toBe(1000 + i);
      }
      // The new blocks are not in such a pack: asking for them is a bug, not damage.
      expect(() => decodeSectionBlock(out, layout, 0, 'new', Buffer.alloc(B), 0, B)).toThrow(/decoded only from a pack that holds them/);
    }
  });
});
