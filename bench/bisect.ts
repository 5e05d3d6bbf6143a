// `rewind bisect` probes against writes searched: a store whose volume takes n writes (n = 100 to
// 10,000, windows of 500 applied, the last few unapplied), one of them — at a random place — plants a
// marker; the probe is a real NBD client (nbdsh; the rows are skipped without it) that fails once
// the marker is there. Each row: probes made, the ceil(log2 n) + 2 a binary search needs at most, seconds
// in all and per probe (the probe's own start-up dominates), and whether the write found is the one
// planted.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { initStore, ManualClock, Store } from '../src/index.js';
import { openStoreReader } from '../src/store/reader.js';
import { bisect } from '../src/recovery-ops/bisect.js';
import { prng } from '../src/prng.js';
import { fixed } from './format.js';

export interface BisectRow {
  writes: number;
  probes: number;
  probesBound: number;
  seconds: number;
  secondsPerProbe: number;
  found: boolean;
  probe: string;
}

const VOLUME_BYTES = 64 * 2 ** 20;
const MARK_AT = VOLUME_BYTES - 4096;
const MARK = 'BAD!';

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function storeWithMark(dir: string, writes: number, bad: number): Promise<void> {
  const clock = new ManualClock(Date.now() - 24 * 3_600_000);
  await initStore(dir, { volumes: [{ name: 'vol', size: VOLUME_BYTES }], window: 'count:500', clock });
  const store = await Store.open(dir, { clock, threads: 1 });
  const rand = prng(writes);
  const block = Buffer.alloc(4096);
  try {
    for (let seq = 1; seq <= writes; seq++) {
      clock.advance(10);
      if (seq === bad) await store.write('vol', MARK_AT, Buffer.from(MARK));
      else await store.write('vol', Math.floor(rand() * (MARK_AT / 4096)) * 4096, block.fill(seq & 0xff));
    }
  } finally {
    await store.close();
  }
}

export async function benchBisect(opts: { quick: boolean }): Promise<BisectRow[]> {
  // nbdsh runs the system python, which has the nbd module.
  process.env.PATH = `/usr/bin:${process.env.PATH ?? ''}`;
  const cmd = has('nbdsh') ? ['nbdsh', '-u', '{}', '-c', `import sys; sys.exit(1 if h.pread(${MARK.length}, ${MARK_AT}) == b"${MARK}" else 0)`] : null;
  if (!cmd) return [];
  const rows: BisectRow[] = [];
  for (const writes of opts.quick ? [100, 1000] : [100, 1000, 10_000]) {
    const root = mkdtempSync(join(os.tmpdir(), 'rewind-bench-bisect-'));
    try {
      const bad = 1 + Math.floor(prng(writes * 7)() * writes);
      await storeWithMark(join(root, 'store'), writes, bad);
      const reader = await openStoreReader(join(root, 'store'));
      try {
        const t0 = performance.now();
        const r = await bisect(reader.history, { volume: 'vol', cmd, log: () => {} });
        const seconds = (performance.now() - t0) / 1000;
        rows.push({
          writes, probes: r.probes, probesBound: Math.ceil(Math.log2(writes)) + 2, seconds, secondsPerProbe: seconds / r.probes,
          found: r.exact && r.seq === bad, probe: cmd[0],
        });
      } finally {
        reader.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return rows;
}

export function printBisect(rows: BisectRow[]): void {
  if (rows.length === 0) {
    console.log('(skipped: nbdsh is not installed)');
    return;
  }
  console.table(rows.map((r) => ({
    'writes searched': r.writes, probes: r.probes, 'log2 bound': r.probesBound, seconds: fixed(r.seconds, 2),
    's/probe': fixed(r.secondsPerProbe, 3), 'found the planted write': r.found ? 'yes' : 'NO', probe: r.probe,
  })));
}
