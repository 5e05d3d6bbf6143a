// The kernels promise: for both builds (simd, scalar), every WASM kernel produces exactly the
// bytes of its TypeScript twin in src/kernels/reference.ts, encodings round-trip, the decoder
// rejects hostile input without touching anything outside its block, and crc32c agrees with
// @node-rs/crc32. Needs `npm run build:wasm` first.

import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { beforeEach, describe, expect, it } from 'vitest';
import { encodedBlockBytesMax } from '../../src/kernels/format.js';
import { createSharedMemory, loadKernels, type Kernels } from '../../src/kernels/kernels.js';
import { HOST_MODULE_LAYOUT, KERNEL_HEAP_START, type ModuleLayout } from '../../src/kernels/layout.js';
import * as ref from '../../src/kernels/reference.js';
import { prng } from '../../src/prng.js';

const MEMORY_BYTES = 24 * 1024 * 1024;
const H = KERNEL_HEAP_START;


function fillRandom(mem: Uint8Array, from: number, len: number, rand: () => number): void {
  for (let i = 0; i < len; i++) mem[from + i] = (rand() * 256) | 0;
}

function writeU32(mem: Uint8Array, at: number, v: number): void {
  new DataView(mem.buffer, mem.byteOffset).setUint32(at, v >>> 0, true);
}
function readU32(mem: Uint8Array, at: number): number {
  return new DataView(mem.buffer, mem.byteOffset).getUint32(at, true);
}

/** Fails with the first differing offset, not a 24 MiB diff. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array, from: number, to: number, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset + from, to - from);
  const e = Buffer.from(expected.buffer, expected.byteOffset + from, to - from);
  if (a.equals(e)) return;
  let i = 0;
  while (a[i] === e[i]) i++;
  expect.fail(`${what}: first difference at offset ${from + i}: wasm ${a[i]} vs reference ${e[i]}`);
}

/** Block-shaped inputs: each chunk is zero or random non-zero, in the given proportion. */
function fillBlocks(
  mem: Uint8Array,
  at: number,
  blockCount: number,
  blockSize: number,
  zeroChunkRatio: number,
  rand: () => number,
): void {
  for (let c = 0; c < (blockCount * blockSize) / 16; c++) {
    const p = at + 16 * c;
    if (rand() < zeroChunkRatio) mem.fill(0, p, p + 16);
    else {
      fillRandom(mem, p, 16, rand);
      if (mem.subarray(p, p + 16).every((x) => x === 0)) mem[p] = 1;
    }
  }
}

for (const variant of ['simd', 'scalar'] as const) {
  describe(`kernels (${variant})`, () => {
    const k: Kernels = loadKernels({ memory: createSharedMemory(MEMORY_BYTES), variant });
    const mem = k.bytes();
    /** The reference's memory image: a copy of the WASM memory's first `upTo` bytes before each call. */
    const twin = new Uint8Array(MEMORY_BYTES);
    function sync(upTo = MEMORY_BYTES): void {
      twin.set(mem.subarray(0, upTo));
    }

    beforeEach(() => {
      // Garbage everywhere callers own, so stray reads or writes show up as differences.
      fillRandom(mem, H, 1 << 20, prng(7));
    });

    it('loads as the requested variant with static data below the heap', () => {
      expect(k.variant).toBe(variant);
      expect(mem.byteLength).toBe(MEMORY_BYTES);
    });

    it('instantiating again over the same memory leaves caller memory untouched', () => {
      fillRandom(mem, H, 4096, prng(99));
      const before = Uint8Array.from(mem.subarray(H));
      const again = loadKernels({ memory: k.memory, variant });
      expect(Buffer.from(mem.subarray(H)).equals(Buffer.from(before))).toBe(true);
      expect(again.crc32c(H, 4096)).toBe(k.crc32c(H, 4096));
    });

    describe('xor', () => {
      it('matches the reference for every length 0..200 and every alignment mod 16', () => {
        const rand = prng(1);
        for (let len = 0; len <= 200; len++) {
          const a = H + 1000 + ((rand() * 16) | 0);
          const b = H + 5000 + ((rand() * 16) | 0);
          const dst = H + 9000 + ((rand() * 16) | 0);
          fillRandom(mem, H, 12000, rand);
          sync(H + 12000);
          k.xor(dst, a, b, len);
          ref.xor(twin, dst, a, b, len);
          expectSameBytes(mem, twin, H, H + 12000, `xor len ${len}`);
        }
      });

      it('matches the reference on 1 MiB + tails, in place (dst = a, dst = b)', () => {
        const rand = prng(2);
        const len = (1 << 20) + 77;
        const a = H + 3;
        const b = H + (2 << 20);
        const dst = H + (4 << 20) + 5;
        fillRandom(mem, a, len, rand);
        fillRandom(mem, b, len, rand);
        const expected = new Uint8Array(len);
        for (let i = 0; i < len; i++) expected[i] = mem[a + i]! ^ mem[b + i]!;
        k.xor(dst, a, b, len);
        expectSameBytes(mem.subarray(dst, dst + len), expected, 0, len, 'xor into dst');
        sync();
        k.xor(a, a, b, len);
        ref.xor(twin, a, a, b, len);
        expectSameBytes(mem.subarray(a, a + len), expected, 0, len, 'xor dst = a');
        k.xor(b, a, b, len); // a ^ b ^ b... b := (a^b) ^ b = a_original
        ref.xor(twin, b, a, b, len);
        expectSameBytes(mem, twin, H, H + (6 << 20), 'xor dst = b');
      });
    });

    describe('crc32c', () => {
      it('is CRC-32C: "123456789" gives 0xE3069283', () => {
        mem.set(Buffer.from('123456789'), H);
        expect(k.crc32c(H, 9)).toBe(0xe3069283);
        expect(ref.crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
      });

      it('equals @node-rs/crc32 for every length 0..200 at every alignment mod 8', () => {
        const rand = prng(3);
        fillRandom(mem, H, 4096, rand);
        for (let len = 0; len <= 200; len++) {
          const at = H + 8 + (len % 8);
          const data = Buffer.from(mem.subarray(at, at + len));
          const expected = nativeCrc32c(data);
          expect(k.crc32c(at, len), `len ${len}`).toBe(expected);
          expect(ref.crc32cAt(mem, at, len)).toBe(expected);
        }
      });

      it('equals @node-rs/crc32 on large random buffers and chains like it', () => {
        const rand = prng(4);
        const len = (1 << 20) + 13;
        fillRandom(mem, H + 1, len, rand);
        const data = Buffer.from(mem.subarray(H + 1, H + 1 + len));
        const whole = nativeCrc32c(data);
        expect(k.crc32c(H + 1, len)).toBe(whole);
        for (let trial = 0; trial < 50; trial++) {
          const cut = (rand() * len) | 0;
          const first = k.crc32c(H + 1, cut);
          expect(first).toBe(nativeCrc32c(data.subarray(0, cut)));
          expect(k.crc32c(H + 1 + cut, len - cut, first)).toBe(whole);
          const seed = (rand() * 2 ** 32) >>> 0;
          const n = (rand() * 300) | 0;
          expect(k.crc32c(H + 1 + cut, n, seed)).toBe(nativeCrc32c(data.subarray(cut, cut + n), seed));
        }
      });
    });

    describe('coalesce', () => {
      it('applies overlapping fragments in order, later ones winning, like memmove', () => {
        const rand = prng(5);
        const region = H + 4096;
        const regionBytes = 256 * 1024;
        for (let trial = 0; trial < 20; trial++) {
          const count = 1 + ((rand() * 300) | 0);
          for (let i = 0; i < count; i++) {
            const len = rand() < 0.1 ? 0 : (rand() * 8192) | 0;
            writeU32(mem, H + 12 * i, region + ((rand() * (regionBytes - len)) | 0));
            writeU32(mem, H + 12 * i + 4, region + ((rand() * (regionBytes - len)) | 0));
            writeU32(mem, H + 12 * i + 8, len);
          }
          sync(region + regionBytes + 4096);
          k.coalesce(H, count);
          ref.coalesce(twin, H, count);
          expectSameBytes(mem, twin, H, region + regionBytes + 4096, `coalesce trial ${trial}`);
        }
      });

      it('throws instead of writing below KERNEL_HEAP_START or past the end of memory', () => {
        writeU32(mem, H, 1024);
        writeU32(mem, H + 4, H + 100);
        writeU32(mem, H + 8, 16);
        expect(() => k.coalesce(H, 1)).toThrow(/coalesce: fragment outside the heap/);
        writeU32(mem, H, MEMORY_BYTES - 8);
        expect(() => k.coalesce(H, 1)).toThrow(/coalesce/);
      });
    });

    describe('zero-run encoding', () => {
      const src = H + (1 << 20);
      const srcB = H + (5 << 20);
      const out = H + (9 << 20);
      const offsets = H + 64;
      const dst = H + (16 << 20);

      function encodeBoth(blockCount: number, blockSize: number): number {
        sync(out + blockCount * encodedBlockBytesMax(blockSize));
        const n = k.zeroRunEncode(src, blockCount, blockSize, out, offsets);
        const m = ref.zeroRunEncode(twin, src, blockCount, blockSize, out, offsets);
        expect(n).toBe(m);
        expect(readU32(mem, offsets + 4 * blockCount)).toBe(n);
        expectSameBytes(mem, twin, H, out + blockCount * encodedBlockBytesMax(blockSize), 'encoding');
        return n;
      }

      function roundTrip(blockCount: number, blockSize: number): void {
        const bytes = blockCount * blockSize;
        const n = readU32(mem, offsets + 4 * blockCount);
        // Overwrite mode over garbage restores the source exactly.
        fillRandom(mem, dst, bytes, prng(11));
        expect(k.zeroRunDecodeBlocks(out, offsets, blockCount, dst, blockSize, 0, n)).toBe(0);
        expectSameBytes(mem.subarray(dst), mem.subarray(src), 0, bytes, 'round trip (overwrite)');
        // XOR mode over a copy of garbage G gives G ^ source.
        fillRandom(mem, dst, bytes, prng(12));
        const garbage = Uint8Array.from(mem.subarray(dst, dst + bytes));
        expect(k.zeroRunDecodeBlocks(out, offsets, blockCount, dst, blockSize, 1, n)).toBe(0);
        for (let i = 0; i < bytes; i++) {
          if (mem[dst + i] !== (garbage[i]! ^ mem[src + i]!)) expect.fail(`round trip (xor) differs at ${i}`);
        }
        // Single-block decode consumes exactly each block's encoding.
        for (let b = 0; b < Math.min(blockCount, 8); b++) {
          const start = readU32(mem, offsets + 4 * b);
          const end = readU32(mem, offsets + 4 * b + 4);
          expect(k.zeroRunDecode(out + start, n - start, dst, blockSize, 0)).toBe(end - start);
          expectSameBytes(mem.subarray(dst), mem.subarray(src + b * blockSize), 0, blockSize, 'single block');
        }
      }

      it('encodes the documented examples', () => {
        mem.fill(0, src, src + 512);
        encodeBoth(1, 512);
        expect(readU32(mem, offsets + 4)).toBe(8);
        expect([readU32(mem, out), readU32(mem, out + 4)]).toEqual([512, 0]);

        fillRandom(mem, src, 512, prng(8));
        for (let c = 0; c < 32; c++) mem[src + 16 * c] = 1; // no all-zero chunk
        encodeBoth(1, 512);
        expect(readU32(mem, offsets + 4)).toBe(8 + 512);
        expect([readU32(mem, out), readU32(mem, out + 4)]).toEqual([0, 512]);
        expectSameBytes(mem.subarray(out + 8), mem.subarray(src), 0, 512, 'literal block');

        // [Z Z L L Z ...]: chunks 2 and 3 non-zero.
        mem.fill(0, src, src + 512);
        mem[src + 32] = 0xaa;
        mem[src + 63] = 0xbb;
        encodeBoth(1, 512);
        expect(readU32(mem, offsets + 4)).toBe(8 + 32 + 8);
        expect([readU32(mem, out), readU32(mem, out + 4)]).toEqual([32, 32]);
        expect(mem[out + 8]).toBe(0xaa);
        expect(mem[out + 8 + 31]).toBe(0xbb);
        expect([readU32(mem, out + 40), readU32(mem, out + 44)]).toEqual([448, 0]);
        roundTrip(1, 512);
      });

      it('stays within encodedBlockBytesMax on the token-heaviest blocks', () => {
        for (const blockSize of [512, 4096]) {
          // L Z L Z ... L Z: (0, 16), (16, 16) x (n/2 - 1), (16, 0).
          for (let c = 0; c < blockSize / 16; c++) mem.fill(c % 2 === 0 ? 7 : 0, src + 16 * c, src + 16 * c + 16);
          expect(encodeBoth(1, blockSize)).toBe(blockSize / 2 + 8 * (blockSize / 32 + 1));
          roundTrip(1, blockSize);
          // Z L Z L ... Z L: (16, 16) x n/2.
          for (let c = 0; c < blockSize / 16; c++) mem.fill(c % 2 === 1 ? 7 : 0, src + 16 * c, src + 16 * c + 16);
          expect(encodeBoth(1, blockSize)).toBe(blockSize / 2 + 8 * (blockSize / 32));
          roundTrip(1, blockSize);
          expect(blockSize / 2 + 8 * (blockSize / 32 + 1)).toBeLessThanOrEqual(encodedBlockBytesMax(blockSize));
          expect(blockSize + 8).toBeLessThanOrEqual(encodedBlockBytesMax(blockSize));
        }
      });

      for (const blockSize of [512, 4096, 65536]) {
        it(`matches the reference and round-trips: all zero, all literal, random mixes (block ${blockSize})`, () => {
          const rand = prng(blockSize);
          const blockCount = Math.max(1, (1 << 20) / blockSize / 4);
          for (const ratio of [1, 0, 0.05, 0.5, 0.95]) {
            fillBlocks(mem, src, blockCount, blockSize, ratio, rand);
            encodeBoth(blockCount, blockSize);
            roundTrip(blockCount, blockSize);
          }
          // Runs of zero and non-zero chunks of random lengths, the shape of real deltas.
          for (let c = 0; c < (blockCount * blockSize) / 16; ) {
            const run = 1 + ((rand() * 40) | 0);
            const zero = rand() < 0.5;
            for (let j = 0; j < run && c < (blockCount * blockSize) / 16; j++, c++) {
              const p = src + 16 * c;
              if (zero) mem.fill(0, p, p + 16);
              else mem.fill(1 + ((rand() * 255) | 0), p, p + 16);
            }
          }
          encodeBoth(blockCount, blockSize);
          roundTrip(blockCount, blockSize);
        });
      }

      it('handles a single non-zero byte at every position of a 512-byte block', () => {
        const blockSize = 512;
        mem.fill(0, src, src + blockSize * blockSize);
        for (let b = 0; b < blockSize; b++) mem[src + b * blockSize + b] = 1 + (b % 255);
        encodeBoth(blockSize, blockSize);
        roundTrip(blockSize, blockSize);
      });

      it('handles a single non-zero byte in every chunk position of a 4 KiB block', () => {
        const blockSize = 4096;
        const rand = prng(13);
        const blockCount = blockSize / 16;
        mem.fill(0, src, src + blockCount * blockSize);
        for (let b = 0; b < blockCount; b++) mem[src + b * blockSize + 16 * b + ((rand() * 16) | 0)] = 0x80;
        encodeBoth(blockCount, blockSize);
        roundTrip(blockCount, blockSize);
      });

      // The SIMD literal-run test pairs the 64-bit halves of four chunks: a chunk whose low or high
      // half alone is zero is non-zero and must stay in the literal, at every position in a group of four.
      it('keeps chunks with one all-zero 64-bit half in literals (zeroRunEncode and deltaEncode)', () => {
        const blockSize = 4096;
        const blockCount = 64;
        const bytes = blockCount * blockSize;
        const rand = prng(21);
        for (let c = 0; c < bytes / 16; ) {
          const run = 1 + ((rand() * 12) | 0);
          const zero = rand() < 0.25;
          for (let j = 0; j < run && c < bytes / 16; j++, c++) {
            const p = src + 16 * c;
            mem.fill(0, p, p + 16);
            if (zero) continue;
            const kind = (rand() * 3) | 0; // 0: low half zero, 1: high half zero, 2: both halves non-zero
            const nonZeroHalves = kind === 0 ? [8] : kind === 1 ? [0] : [0, 8];
            for (const h of nonZeroHalves) mem[p + h + ((rand() * 8) | 0)] = 1 + ((rand() * 255) | 0);
          }
        }
        encodeBoth(blockCount, blockSize);
        roundTrip(blockCount, blockSize);
        // The same chunks as a delta: b random, a = b ^ chunks.
        const delta = Uint8Array.from(mem.subarray(src, src + bytes));
        const encoded = Uint8Array.from(mem.subarray(out, out + readU32(mem, offsets + 4 * blockCount)));
        fillRandom(mem, srcB, bytes, rand);
        for (let i = 0; i < bytes; i++) mem[src + i] = delta[i]! ^ mem[srcB + i]!;
        sync();
        const n = k.deltaEncode(src, srcB, blockCount, blockSize, out, offsets);
        expect(n).toBe(ref.deltaEncode(twin, src, srcB, blockCount, blockSize, out, offsets));
        expect(n).toBe(encoded.length);
        expectSameBytes(mem, twin, H, out + blockCount * encodedBlockBytesMax(blockSize), 'deltaEncode, half-zero chunks');
        expectSameBytes(mem.subarray(out), encoded, 0, n, 'deltaEncode vs zeroRunEncode, half-zero chunks');
      });

      it('deltaEncode(a, b) equals zeroRunEncode(a ^ b) and decodes b back from a', () => {
        for (const blockSize of [512, 4096, 65536]) {
          const rand = prng(blockSize + 1);
          const blockCount = Math.max(1, (1 << 20) / blockSize / 4);
          const bytes = blockCount * blockSize;
          for (const ratio of [0, 0.5, 1]) {
            fillRandom(mem, srcB, bytes, rand);
            mem.copyWithin(src, srcB, srcB + bytes);
            // Change a fraction of the chunks of a copy, so the delta has zero runs.
            for (let c = 0; c < bytes / 16; c++) if (rand() >= ratio) mem[src + 16 * c + ((rand() * 16) | 0)] ^= 0x5a;
            const a = Uint8Array.from(mem.subarray(src, src + bytes));
            sync();
            const n = k.deltaEncode(src, srcB, blockCount, blockSize, out, offsets);
            expect(n).toBe(ref.deltaEncode(twin, src, srcB, blockCount, blockSize, out, offsets));
            expectSameBytes(mem, twin, H, out + n + 64, `deltaEncode ${blockSize}/${ratio}`);
            const delta = Uint8Array.from(mem.subarray(out, out + n));
            const deltaOffsets = Uint8Array.from(mem.subarray(offsets, offsets + 4 * (blockCount + 1)));
            // Same bytes as encoding the materialised XOR.
            k.xor(src, src, srcB, bytes);
            expect(k.zeroRunEncode(src, blockCount, blockSize, out, offsets)).toBe(n);
            expectSameBytes(mem.subarray(out), delta, 0, n, 'deltaEncode vs zeroRunEncode(xor)');
            expectSameBytes(mem.subarray(offsets), deltaOffsets, 0, deltaOffsets.length, 'delta offsets');
            // XOR-decoding the delta into b gives a.
            expect(k.zeroRunDecodeBlocks(out, offsets, blockCount, srcB, blockSize, 1, n)).toBe(0);
            expectSameBytes(mem.subarray(srcB), a, 0, bytes, 'b ^ delta = a');
          }
        }
      });
    });

    describe('zero-run decoding of hostile input', () => {
      const enc = H + 1024;
      const dst = H + (2 << 20);
      const GUARD = 4096;
      const blockSize = 512;

      function token(at: number, zero: number, literal: number): number {
        writeU32(mem, at, zero);
        writeU32(mem, at + 4, literal);
        return at + 8 + literal;
      }

      /** Decodes with both implementations and demands identical results and memory. */
      function decodeBoth(encLen: number, xorMode: 0 | 1): number {
        sync(dst + blockSize + GUARD);
        const r = k.zeroRunDecode(enc, encLen, dst, blockSize, xorMode);
        expect(ref.zeroRunDecode(twin, enc, encLen, dst, blockSize, xorMode)).toBe(r);
        expectSameBytes(mem, twin, H, dst + blockSize + GUARD, 'decode image');
        return r;
      }

      it('rejects truncated encodings and ignores bytes after a complete one', () => {
        const rand = prng(21);
        fillBlocks(mem, H + (4 << 20), 1, blockSize, 0.5, rand);
        const n = k.zeroRunEncode(H + (4 << 20), 1, blockSize, enc, H);
        for (let len = 0; len < n; len++) expect(decodeBoth(len, 0), `encLen ${len}`).toBe(-1);
        expect(decodeBoth(n, 0)).toBe(n);
        expect(decodeBoth(n + 100, 1)).toBe(n);
      });

      it('rejects tokens that overflow, run past the block, fall short of it, or are empty', () => {
        const cases: Array<[string, number[][]]> = [
          ['empty token', [[0, 0], [512, 0]]],
          ['zero run past the block', [[513, 0]]],
          ['literal past the block', [[256, 257]]],
          ['u32 overflow of zero + literal', [[0xffffffff, 1]]],
          ['u32 overflow in literal', [[16, 0xfffffff0]]],
          ['short of the block', [[256, 0]]],
          ['second token past the block', [[256, 16], [256, 0]]],
        ];
        for (const [what, tokens] of cases) {
          let at = enc;
          for (const [z, l] of tokens) {
            token(at, z!, l!);
            at += 8 + (l! > 1000 ? 0 : l!);
          }
          expect(decodeBoth(at - enc + 64, 0), what).toBe(-1);
          expect(decodeBoth(at - enc + 64, 1), what).toBe(-1);
        }
        // Non-canonical but exact coverage is accepted: (100, 12), (400, 0).
        token(token(enc, 100, 12), 400, 0);
        expect(decodeBoth(8 + 12 + 8, 0)).toBe(28);
        expect(mem.subarray(dst, dst + 100).every((x) => x === 0)).toBe(true);
      });

      it('fuzz: random tokens never throw and never write outside dst', () => {
        const rand = prng(22);
        const guardBefore = Uint8Array.from(mem.subarray(dst - GUARD, dst));
        const guardAfter = Uint8Array.from(mem.subarray(dst + blockSize, dst + blockSize + GUARD));
        let accepted = 0;
        for (let trial = 0; trial < 3000; trial++) {
          fillRandom(mem, enc, 1200, rand);
          // Plausible headers (small, near the boundaries) reach deeper than random u32s.
          let at = enc;
          const tokens = 1 + ((rand() * 6) | 0);
          for (let t = 0; t < tokens && rand() < 0.9; t++) {
            const pick = (): number =>
              rand() < 0.7 ? 16 * ((rand() * 12) | 0) : rand() < 0.5 ? (rand() * 600) | 0 : (rand() * 2 ** 32) >>> 0;
            const lit = pick();
            at = token(at, pick(), lit > 1000 ? lit : Math.min(lit, enc + 1200 - at - 8));
            if (at >= enc + 1100) break;
          }
          const encLen = (rand() * 1200) | 0;
          const r = decodeBoth(encLen, rand() < 0.5 ? 0 : 1);
          if (r >= 0) accepted++;
          expect(r).toBeLessThanOrEqual(encLen);
        }
        expectSameBytes(mem.subarray(dst - GUARD, dst), guardBefore, 0, GUARD, 'guard before dst');
        expectSameBytes(mem.subarray(dst + blockSize), guardAfter, 0, GUARD, 'guard after dst');
        expect(accepted).toBeGreaterThan(0);
      });

      it('fuzz: plain random bytes are rejected without touching memory outside dst', () => {
        const rand = prng(23);
        for (let trial = 0; trial < 500; trial++) {
          fillRandom(mem, enc, 2048, rand);
          expect(decodeBoth(2048, (trial & 1) as 0 | 1)).toBe(-1);
        }
      });

      it('decodeBlocks reports the first bad block: bad offsets, short or long encodings', () => {
        const rand = prng(24);
        const blockCount = 8;
        const src = H + (4 << 20);
        const offsets = H + 64;
        const blocksDst = H + (6 << 20);
        fillBlocks(mem, src, blockCount, blockSize, 0.5, rand);
        const n = k.zeroRunEncode(src, blockCount, blockSize, enc, offsets);
        const good = Uint8Array.from(mem.subarray(offsets, offsets + 4 * (blockCount + 1)));
        const run = (encLen?: number): number => {
          sync(blocksDst + blockCount * blockSize + GUARD);
          const r = k.zeroRunDecodeBlocks(enc, offsets, blockCount, blocksDst, blockSize, 0, encLen);
          expect(ref.zeroRunDecodeBlocks(twin, enc, offsets, blockCount, blocksDst, blockSize, 0, encLen)).toBe(r);
          expectSameBytes(mem, twin, H, blocksDst + blockCount * blockSize + GUARD, 'decodeBlocks image');
          return r;
        };
        expect(run(n)).toBe(0);
        expect(run()).toBe(0);
        expect(run(n - 1)).toBe(-blockCount); // the last block runs past encLen

        const o = (i: number): number => readU32(good, 4 * i);
        const restore = (): void => mem.set(good, offsets);
        writeU32(mem, offsets + 12, o(2)); // offsets[3] == offsets[2]: block 2 empty
        expect(run(n)).toBe(-3);
        restore();
        writeU32(mem, offsets + 12, o(2) - 1); // decreasing
        expect(run(n)).toBe(-3);
        restore();
        writeU32(mem, offsets + 16, o(4) + 1); // block 3 has a trailing byte, block 4 starts mid-token
        expect(run(n)).toBe(-4);
        restore();
        writeU32(mem, offsets + 4 * blockCount, 0xffffffff); // last offset beyond memory
        expect(run()).toBe(-blockCount);
        restore();
        writeU32(mem, offsets, o(1)); // block 0 claims nothing
        expect(run(n)).toBe(-1);
      });
    });

    describe('host boundary', () => {
      it('rejects pointers below the heap, ranges past memory, bad block sizes and modes', () => {
        expect(() => k.xor(1024, H, H, 16)).toThrow(expect.objectContaining({ code: 'INVARIANT', message: expect.stringMatching(/xor dst/) }));
        expect(() => k.xor(H, H, MEMORY_BYTES - 8, 16)).toThrow(/xor b/);
        expect(() => k.xor(H + 8, H, H + 100, 16)).toThrow(/overlap/);
        expect(() => k.crc32c(H, -1)).toThrow(expect.objectContaining({ code: 'INVARIANT' }));
        expect(() => k.zeroRunEncode(H, 1, 1000, H + 4096, H + 8192)).toThrow(/block size 1000/);
        expect(() => k.zeroRunEncode(H, 1, 256, H + 4096, H + 8192)).toThrow(/block size/);
        expect(() => k.zeroRunEncode(H, 1, 512, MEMORY_BYTES - 520, H + 8192)).toThrow(/out/);
        expect(() => k.zeroRunDecode(H, 100, H + 4096, 512, 2 as 0)).toThrow(/xorMode/);
        expect(() => k.coalesce(MEMORY_BYTES - 12, 2)).toThrow(/table/);
      });

      it('loads only a module whose compiled-in layout is the one the host declares', () => {
        const memory = createSharedMemory(2 * KERNEL_HEAP_START);
        expect(loadKernels({ memory, variant, layout: HOST_MODULE_LAYOUT }).variant).toBe(variant);
        const mismatches: Partial<ModuleLayout>[] = [
          { heapStart: 4096 }, // below the module's static data
          { heapStart: 2 * KERNEL_HEAP_START }, // room enough, but not where the module guards
          { fragmentBytes: 16 },
          { chunkBytes: 32 },
          { tokenHeaderBytes: 4 },
        ];
        for (const m of mismatches) {
          const key = Object.keys(m)[0];
          expect(() => loadKernels({ memory, variant, layout: { ...HOST_MODULE_LAYOUT, ...m } }), key).toThrow(
            expect.objectContaining({ name: 'RewindError', code: 'INVARIANT' }),
          );
        }
      });
    });
  });
}
