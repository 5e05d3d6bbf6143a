// `rewind diff` against volume size: the extents written over the same change set (the newest half
// of the history, bench/sparse-history.ts) on sparse volumes of 64 MiB to 16 GiB. diff reads the
// packs' block lists and the journal and no volume, so it should take the same time whatever the
// size.
// - in process: what the command does after start-up: open the store as a reader, list the extents,
//   close (cold: the first time; warm: the median of the next ones).
// - command: `rewind diff STORE --volume v --from N --json` as a user runs it (Node.js start-up
//   included), once.
//
// Run alone: npm run build && node dist/bench/diff.js [--quick]
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStoreReader } from '../src/index.js';
import { assert } from '../src/errors.js';
import { fixed } from './format.js';
import { isMain } from './main-module.js';
import { median, sizeLabel, storeWithChanges, benchSizes, perVolumeSize } from './sparse-history.js';

export interface DiffRow {
  volumeBytes: number;
  windows: number;
  fromSeq: number;
  toSeq: number;
  extents: number;
  bytes: number;
  coldMs: number;
  warmMs: number;
  commandMs: number;
}

const WARM_RUNS = 9;
const REWIND = fileURLToPath(new URL('../../bin/rewind.js', import.meta.url));

async function one(root: string, volumeBytes: number, windows: number): Promise<DiffRow> {
  const dir = join(root, `store-${volumeBytes}`);
  const { store, ends } = await storeWithChanges(dir, volumeBytes, windows);
  await store.close();
  try {
    const fromSeq = ends[Math.floor(ends.length / 2)];
    const toSeq = ends[ends.length - 1];
    const diffOnce = async () => {
      const t0 = performance.now();
      const reader = await openStoreReader(dir);
      try {
        const r = reader.history.diff('v', { seq: fromSeq }, { seq: toSeq });
        return { ms: performance.now() - t0, extents: r.extents };
      } finally {
        reader.close();
      }
    };
    const cold = await diffOnce();
    const warm: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) warm.push((await diffOnce()).ms);
    const t0 = performance.now();
    const out = execFileSync(process.execPath, [REWIND, 'diff', dir, '--volume', 'v', '--from', String(fromSeq), '--to', String(toSeq), '--json'], { encoding: 'utf8' });
    const commandMs = performance.now() - t0;
    const printed = JSON.parse(out) as { extents: unknown[]; bytes: number };
    assert(printed.extents.length === cold.extents.length, `rewind diff prints the extents the library finds (${printed.extents.length} against ${cold.extents.length})`);
    return {
      volumeBytes, windows, fromSeq, toSeq, extents: cold.extents.length, bytes: printed.bytes,
      coldMs: cold.ms, warmMs: median(warm), commandMs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchDiff(opts: { quick?: boolean } = {}): Promise<DiffRow[]> {
  const windows = opts.quick ? 100 : 400;
  return perVolumeSize('diff', benchSizes(opts.quick === true), (root, size) => one(root, size, windows));
}

export function printDiff(rows: DiffRow[]): void {
  console.table(rows.map((r) => ({
    volume: sizeLabel(r.volumeBytes),
    'windows diffed': r.windows - Math.floor(r.windows / 2) - 1,
    extents: r.extents,
    'MiB changed': fixed(r.bytes / 2 ** 20, 1),
    'in process ms cold': fixed(r.coldMs, 1),
    'warm ms': fixed(r.warmMs, 1),
    'rewind diff command ms': fixed(r.commandMs, 0),
  })));
}

if (isMain(import.meta.url)) printDiff(await benchDiff({ quick: process.argv.includes('--quick') }));
