// Byte-crunching kernels of rewind: XOR, fragment coalescing, the zero-run block encoding
// (plain and delta), its decoder, and CRC-32C. Pure functions over raw pointers into an
// imported shared memory; they never allocate. The host (src/kernels/kernels.ts) checks
// every pointer range before calling, so inner loops carry no bounds checks; the decoder
// alone checks everything itself because its input comes from disk.
//
// One source, two builds: `ASC_FEATURE_SIMD` selects v128 paths at compile time, the
// scalar build uses u64 words. The encoding is documented in src/kernels/format.ts.

import { CRC32C_TABLE } from "./crc32c-table";

// The layout constants this module compiles in, exported (as immutable globals) so the host checks
// at load that they are the ones it declares in src/kernels/layout.ts and src/kernels/format.ts.
// Callers own memory from HEAP_START upward; static data (tables, abort strings) sits below.
export const HEAP_START: usize = 65536;
// A coalesce fragment: u32 dst, u32 src, u32 len.
export const FRAGMENT_BYTES: usize = 12;
// The encoding's unit (one v128) and its token header (u32 zeroBytes, u32 literalBytes).
export const CHUNK_BYTES: usize = 16;
export const TOKEN_HEADER_BYTES: usize = 8;

// Marker types selecting the encoder's input at compile time.
type Plain = u8; // encode the bytes at `a`
type Delta = u16; // encode a XOR b, never materialised

// The end of the static data, which must lie at or below HEAP_START.
export function heapBase(): usize {
  return __heap_base;
}

// ---------------------------------------------------------------------------------------
// xor: dst[i] = a[i] ^ b[i]. dst may equal a or b (each chunk is read before it is written);
// partial overlaps are not supported.

export function xor(dst: usize, a: usize, b: usize, len: usize): void {
  if (ASC_FEATURE_SIMD) {
    // Interleaved load/xor/store measured faster than all loads first; one induction variable
    // or 4x unrolling made no difference. Once the three buffers outgrow the L2, merely reading
    // them runs as fast as this loop: the cache, not the loop, is the limit (README, Performance).
    let n = len >>> 7;
    while (n) {
      v128.store(dst, v128.xor(v128.load(a), v128.load(b)));
      v128.store(dst, v128.xor(v128.load(a, 16), v128.load(b, 16)), 16);
      v128.store(dst, v128.xor(v128.load(a, 32), v128.load(b, 32)), 32);
      v128.store(dst, v128.xor(v128.load(a, 48), v128.load(b, 48)), 48);
      v128.store(dst, v128.xor(v128.load(a, 64), v128.load(b, 64)), 64);
      v128.store(dst, v128.xor(v128.load(a, 80), v128.load(b, 80)), 80);
      v128.store(dst, v128.xor(v128.load(a, 96), v128.load(b, 96)), 96);
      v128.store(dst, v128.xor(v128.load(a, 112), v128.load(b, 112)), 112);
      dst += 128;
      a += 128;
      b += 128;
      n--;
    }
    n = (len >>> 4) & 7;
    while (n) {
      v128.store(dst, v128.xor(v128.load(a), v128.load(b)));
      dst += 16;
      a += 16;
      b += 16;
      n--;
    }
    if (len & 8) {
      store<u64>(dst, load<u64>(a) ^ load<u64>(b));
      dst += 8;
      a += 8;
      b += 8;
    }
  } else {
    let n = len >>> 5;
    while (n) {
      const w0 = load<u64>(a) ^ load<u64>(b);
      const w1 = load<u64>(a, 8) ^ load<u64>(b, 8);
      const w2 = load<u64>(a, 16) ^ load<u64>(b, 16);
      const w3 = load<u64>(a, 24) ^ load<u64>(b, 24);
      store<u64>(dst, w0);
      store<u64>(dst, w1, 8);
      store<u64>(dst, w2, 16);
      store<u64>(dst, w3, 24);
      dst += 32;
      a += 32;
      b += 32;
      n--;
    }
    n = (len >>> 3) & 3;
    while (n) {
      store<u64>(dst, load<u64>(a) ^ load<u64>(b));
      dst += 8;
      a += 8;
      b += 8;
      n--;
    }
  }
  let n = len & 7;
  while (n) {
    store<u8>(dst, load<u8>(a) ^ load<u8>(b));
    dst++;
    a++;
    b++;
    n--;
  }
}

// ---------------------------------------------------------------------------------------
// coalesce: apply `count` fragments (u32 dst, u32 src, u32 len) in order with memory.copy
// semantics; later fragments win. Fragments are checked here (the host cannot see them
// without reading the table): nothing may touch the static data below HEAP_START.

export function coalesce(table: usize, count: usize): void {
  const memEnd = <u64>memory.size() << 16;
  for (let i: usize = 0; i < count; i++) {
    const entry = table + i * FRAGMENT_BYTES;
    const d = <usize>load<u32>(entry);
    const s = <usize>load<u32>(entry, 4);
    const l = <usize>load<u32>(entry, 8);
    assert(
      d >= HEAP_START && s >= HEAP_START && <u64>d + l <= memEnd && <u64>s + l <= memEnd,
      "coalesce: fragment outside the heap",
    );
    memory.copy(d, s, l);
  }
}

// ---------------------------------------------------------------------------------------
// Zero-run encoding. A block is a sequence of 16-byte chunks; each token is
// (u32 zeroBytes, u32 literalBytes) + literal bytes: a (possibly empty) run of all-zero
// chunks, then a maximal run of non-zero chunks. Returns bytes written at `out`.

export function zeroRunEncode(
  src: usize,
  blockCount: usize,
  blockSize: usize,
  out: usize,
  offsets: usize,
): usize {
  return encodeBlocks<Plain>(src, 0, blockCount, blockSize, out, offsets);
}

export function deltaEncode(
  a: usize,
  b: usize,
  blockCount: usize,
  blockSize: usize,
  out: usize,
  offsets: usize,
): usize {
  return encodeBlocks<Delta>(a, b, blockCount, blockSize, out, offsets);
}

// @ts-ignore: decorator
@inline
function encodeBlocks<T>(
  a: usize,
  b: usize,
  blockCount: usize,
  blockSize: usize,
  out: usize,
  offsets: usize,
): usize {
  let o = out;
  for (let i: usize = 0; i < blockCount; i++) {
    store<u32>(offsets + (i << 2), <u32>(o - out));
    if (ASC_FEATURE_SIMD) {
      o = encodeBlockSimd<T>(a, b, blockSize, o);
    } else {
      o = encodeBlockScalar<T>(a, b, blockSize, o);
    }
    a += blockSize;
    if (sizeof<T>() == sizeof<Delta>()) b += blockSize;
  }
  store<u32>(offsets + (blockCount << 2), <u32>(o - out));
  return o - out;
}

// @ts-ignore: decorator
@inline
function chunkAt<T>(a: usize, b: usize, off: usize): v128 {
  if (sizeof<T>() == sizeof<Delta>()) {
    return v128.xor(v128.load(a + off), v128.load(b + off));
  } else {
    return v128.load(a + off);
  }
}

// @ts-ignore: decorator
@lazy const ZERO = i64x2.splat(0);

function encodeBlockSimd<T>(a: usize, b: usize, blockSize: usize, o: usize): usize {
  let p: usize = 0;
  do {
    // Zero run: skip 64 bytes at a time, then find the first non-zero chunk.
    const zeroStart = p;
    while (p + 64 <= blockSize) {
      const c0 = chunkAt<T>(a, b, p);
      const c1 = chunkAt<T>(a, b, p + 16);
      const c2 = chunkAt<T>(a, b, p + 32);
      const c3 = chunkAt<T>(a, b, p + 48);
      if (v128.any_true(v128.or(v128.or(c0, c1), v128.or(c2, c3)))) break;
      p += 64;
    }
    while (p < blockSize && !v128.any_true(chunkAt<T>(a, b, p))) p += CHUNK_BYTES;
    const header = o;
    store<u32>(header, <u32>(p - zeroStart));
    o += TOKEN_HEADER_BYTES;

    // Literal run: copy 64 bytes at a time while all four chunks are non-zero.
    const literalStart = p;
    while (p + 64 <= blockSize) {
      const c0 = chunkAt<T>(a, b, p);
      const c1 = chunkAt<T>(a, b, p + 16);
      const c2 = chunkAt<T>(a, b, p + 32);
      const c3 = chunkAt<T>(a, b, p + 48);
      // A chunk is zero iff both its 64-bit halves are: pair the halves of two chunks per
      // vector, AND them, and one any_true tells whether any of the four chunks is zero.
      const z0 = i64x2.eq(c0, ZERO);
      const z1 = i64x2.eq(c1, ZERO);
      const z2 = i64x2.eq(c2, ZERO);
      const z3 = i64x2.eq(c3, ZERO);
      const z01 = v128.and(
        i8x16.shuffle(z0, z1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
        i8x16.shuffle(z0, z1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31),
      );
      const z23 = v128.and(
        i8x16.shuffle(z2, z3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
        i8x16.shuffle(z2, z3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31),
      );
      if (v128.any_true(v128.or(z01, z23))) break;
      v128.store(o, c0);
      v128.store(o, c1, 16);
      v128.store(o, c2, 32);
      v128.store(o, c3, 48);
      o += 64;
      p += 64;
    }
    while (p < blockSize) {
      const c = chunkAt<T>(a, b, p);
      if (!v128.any_true(c)) break;
      v128.store(o, c);
      o += CHUNK_BYTES;
      p += CHUNK_BYTES;
    }
    store<u32>(header, <u32>(p - literalStart), 4);
  } while (p < blockSize);
  return o;
}

function encodeBlockScalar<T>(a: usize, b: usize, blockSize: usize, o: usize): usize {
  const delta = sizeof<T>() == sizeof<Delta>();
  let p: usize = 0;
  do {
    const zeroStart = p;
    while (p < blockSize) {
      let lo = load<u64>(a + p);
      let hi = load<u64>(a + p, 8);
      if (delta) {
        lo ^= load<u64>(b + p);
        hi ^= load<u64>(b + p, 8);
      }
      if (lo | hi) break;
      p += CHUNK_BYTES;
    }
    const header = o;
    store<u32>(header, <u32>(p - zeroStart));
    o += TOKEN_HEADER_BYTES;

    const literalStart = p;
    while (p < blockSize) {
      let lo = load<u64>(a + p);
      let hi = load<u64>(a + p, 8);
      if (delta) {
        lo ^= load<u64>(b + p);
        hi ^= load<u64>(b + p, 8);
      }
      if (!(lo | hi)) break;
      store<u64>(o, lo);
      store<u64>(o, hi, 8);
      o += CHUNK_BYTES;
      p += CHUNK_BYTES;
    }
    store<u32>(header, <u32>(p - literalStart), 4);
  } while (p < blockSize);
  return o;
}

// ---------------------------------------------------------------------------------------
// Zero-run decoding. Input is hostile: every token is checked against both the bytes
// available at `enc` and the room left in the block before anything is read or written.

export function zeroRunDecode(enc: usize, encLen: usize, dst: usize, blockSize: usize, xorMode: u32): i32 {
  return decodeBlock(enc, encLen, dst, blockSize, xorMode);
}

// `encLen`: bytes readable from `enc` (the host passes what it knows, else up to the end
// of memory); offsets beyond it mark the block malformed.
export function zeroRunDecodeBlocks(
  enc: usize,
  offsets: usize,
  blockCount: usize,
  dst: usize,
  blockSize: usize,
  xorMode: u32,
  encLen: usize,
): i32 {
  for (let i: usize = 0; i < blockCount; i++) {
    const start = <usize>load<u32>(offsets + (i << 2));
    const end = <usize>load<u32>(offsets + (i << 2), 4);
    if (end <= start || end > encLen) return -(<i32>i + 1);
    const used = decodeBlock(enc + start, end - start, dst + i * blockSize, blockSize, xorMode);
    if (used < 0 || <usize>used != end - start) return -(<i32>i + 1);
  }
  return 0;
}

function decodeBlock(enc: usize, encLen: usize, dst: usize, blockSize: usize, xorMode: u32): i32 {
  let covered: usize = 0;
  let used: usize = 0;
  while (covered < blockSize) {
    if (encLen - used < TOKEN_HEADER_BYTES) return -1;
    const zeroBytes = <usize>load<u32>(enc + used);
    const literalBytes = <usize>load<u32>(enc + used, 4);
    used += TOKEN_HEADER_BYTES;
    const room = blockSize - covered;
    // An empty token is never produced and would only pad hostile input.
    if (zeroBytes == 0 && literalBytes == 0) return -1;
    if (zeroBytes > room || literalBytes > room - zeroBytes) return -1;
    if (literalBytes > encLen - used) return -1;
    if (!xorMode && zeroBytes) memory.fill(dst + covered, 0, zeroBytes);
    covered += zeroBytes;
    if (literalBytes) {
      if (xorMode) xor(dst + covered, dst + covered, enc + used, literalBytes);
      else memory.copy(dst + covered, enc + used, literalBytes);
      covered += literalBytes;
      used += literalBytes;
    }
  }
  return <i32>used;
}

// ---------------------------------------------------------------------------------------
// CRC-32C (Castagnoli, reflected), slice-by-16: sixteen independent table loads per step
// hide the load latency that bounds slice-by-8. Wasm has no carry-less multiply, so tables it is. Chainable: crc32c(b, crc32c(a, 0)) equals crc32c(a ‖ b, 0),
// like @node-rs/crc32's crc32c(buf, initialState).

export function crc32c(ptr: usize, len: usize, seed: u32): u32 {
  const T = CRC32C_TABLE;
  let crc = ~seed;
  // Table offsets are immediates, bytes 4..15 are byte loads (fewer instructions per lookup),
  // and the XORs form a tree whose crc-dependent half comes last: the loop-carried chain is
  // one lookup and two XORs, not sixteen serial XORs.
  while (len >= 16) {
    // Bytes 4..15 do not depend on crc: three independent groups of four lookups.
    const rest =
      ((load<u32>(<usize>(load<u8>(ptr, 4)) << 2, T + 11 * 1024) ^
        load<u32>(<usize>(load<u8>(ptr, 5)) << 2, T + 10 * 1024)) ^
       (load<u32>(<usize>(load<u8>(ptr, 6)) << 2, T + 9 * 1024) ^
        load<u32>(<usize>(load<u8>(ptr, 7)) << 2, T + 8 * 1024))) ^
      ((load<u32>(<usize>(load<u8>(ptr, 8)) << 2, T + 7 * 1024) ^
        load<u32>(<usize>(load<u8>(ptr, 9)) << 2, T + 6 * 1024)) ^
       (load<u32>(<usize>(load<u8>(ptr, 10)) << 2, T + 5 * 1024) ^
        load<u32>(<usize>(load<u8>(ptr, 11)) << 2, T + 4 * 1024))) ^
      ((load<u32>(<usize>(load<u8>(ptr, 12)) << 2, T + 3 * 1024) ^
        load<u32>(<usize>(load<u8>(ptr, 13)) << 2, T + 2 * 1024)) ^
       (load<u32>(<usize>(load<u8>(ptr, 14)) << 2, T + 1 * 1024) ^
        load<u32>(<usize>(load<u8>(ptr, 15)) << 2, T + 0 * 1024)));
    const w = load<u32>(ptr) ^ crc;
    crc =
      rest ^
      ((load<u32>(<usize>(w & 0xff) << 2, T + 15 * 1024) ^
        load<u32>(<usize>((w >>> 8) & 0xff) << 2, T + 14 * 1024)) ^
       (load<u32>(<usize>((w >>> 16) & 0xff) << 2, T + 13 * 1024) ^
        load<u32>(<usize>(w >>> 24) << 2, T + 12 * 1024)));
    ptr += 16;
    len -= 16;
  }
  while (len) {
    crc = load<u32>(<usize>((crc ^ load<u8>(ptr)) & 0xff) << 2, T) ^ (crc >>> 8);
    ptr++;
    len--;
  }
  return ~crc;
}
