// Shared set-up for the crash, fault and hostile-client tests (GitHub issue 5): a storage wrapper
// that injects disk errors, child processes with hard timeouts, `rewind serve` as a child that can
// be killed with SIGKILL, and known block patterns that say which write put them there.

import { stopAll } from '../helpers/processes.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

// NBD protocol error values (NetworkBlockDevice/nbd doc/proto.md).
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;

// ---- faults: see test/helpers/faulty-storage.ts ----

export { FaultyStorage, type Fault } from '../helpers/faulty-storage.js';

// ---- child processes and `rewind serve`: see test/helpers/processes.ts ----

export { BIN, CHILD_TIMEOUT_MS, nbdshEnv, ok, removeTempDirs, rewind, run, sha256, sleep, startServe, tempDir, uri, type Ran, type Served } from '../helpers/processes.js';

/** For afterEach: stops every server and kills every tool still running. */
export const killChildren = (): Promise<void> => stopAll();

// ---- known patterns -------------------------------------------------------------------------------

export const BLOCK = 4096;
const PATTERN_MAGIC = 0x52574e44; // 'RWND'

/**
 * The 4 KiB block `block` as write number `write` (from 1) leaves it: a header naming both, then
 * bytes derived from them, so a block read back says which write put it there (0: never written).
 */
export function patternBlock(write: number, block: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  b.writeUInt32LE(PATTERN_MAGIC, 0);
  b.writeUInt32LE(write, 4);
  b.writeUInt32LE(block, 8);
  let x = (write * 2654435761) ^ (block * 40503) ^ 0x9e3779b9;
  for (let i = 12; i < BLOCK; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeInt32LE(x | 0, i);
  }
  return b;
}

export function patternWrite(write: number, firstBlock: number, blocks: number): Buffer {
  return Buffer.concat(Array.from({ length: blocks }, (_, i) => patternBlock(write, firstBlock + i)));
}

/** Which write left this block (0 for zeroes); throws if it is neither zeroes nor an exact pattern. */
export function identifyBlock(buf: Buffer, block: number): number {
  if (buf.every((x) => x === 0)) return 0;
  const write = buf.readUInt32LE(4);
  if (buf.readUInt32LE(0) !== PATTERN_MAGIC || buf.readUInt32LE(8) !== block || !buf.equals(patternBlock(write, block))) {
    throw new Error(`block ${block} holds neither zeroes nor a written pattern (header ${buf.subarray(0, 12).toString('hex')})`);
  }
  return write;
}

export interface PlannedWrite {
  /** 1-based, in the order sent on one connection (which is the order the server captures them). */
  n: number;
  block: number;
  blocks: number;
}

/**
 * Given which write each block holds, the range of K such that the region equals "the first K
 * writes applied in order" ([lo, hi], empty if lo > hi). Block b holding write w means K >= w and
 * K < the next write after w touching b.
 */
export function consistentPrefix(holders: number[], writes: PlannedWrite[], totalWrites: number): { lo: number; hi: number } {
  const touching = new Map<number, number[]>();
  for (const w of writes) for (let b = w.block; b < w.block + w.blocks; b++) (touching.get(b) ?? touching.set(b, []).get(b)!).push(w.n);
  let lo = 0;
  let hi = totalWrites;
  holders.forEach((w, b) => {
    const list = touching.get(b) ?? [];
    if (w !== 0 && !list.includes(w)) throw new Error(`block ${b} holds write ${w}, which never touched it`);
    const next = list.find((n) => n > w);
    lo = Math.max(lo, w);
    if (next !== undefined) hi = Math.min(hi, next - 1);
  });
  return { lo, hi };
}
