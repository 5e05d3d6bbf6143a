// Embedded capture throughput: writes through Store.write (journal record + production write, then
// windows built and applied on the kernel pool) against plain writes of the same bytes to a file
// (what the application would pay with no history at all), side by side in one run.
import { mkdtempSync, openSync, writeSync, closeSync, rmSync, fdatasyncSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { initStore, Store } from '../src/index.js';
import { isMain } from './main-module.js';

export interface CaptureBenchRow {
  writeBytes: number;
  writesPerBatch: number;
  rewindMBps: number;
  rewindWritesPerSec: number;
  plainMBps: number;
  ratio: number;
  /** Captured and applied to the replica (windows built, packs written), measured once over the whole run. */
  appliedMBps: number;
}

const VOLUME_BYTES = 256 * 2 ** 20;

export async function benchCapture(opts: { quick?: boolean } = {}): Promise<CaptureBenchRow[]> {
  const rows: CaptureBenchRow[] = [];
  for (const writeBytes of [4096, 65536]) {
    const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-'));
    try {
      await initStore(join(dir, 'store'), { volumes: [{ name: 'disk0', size: VOLUME_BYTES }], window: 'bytes:16M,time:1s' });
      const store = await Store.open(join(dir, 'store'));
      const plainFd = openSync(join(dir, 'plain'), 'w+');
      const batch = writeBytes === 4096 ? 1024 : 128;
      const data = Buffer.alloc(writeBytes, 0x5a);
      const slots = VOLUME_BYTES / writeBytes;
      let seed = 7;
      const nextOffset = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return (seed % slots) * writeBytes;
      };
      const bench = new Bench({ time: opts.quick ? 300 : 2000, warmupTime: opts.quick ? 50 : 300 });
      bench
        .add('rewind', async () => {
          for (let i = 0; i < batch; i++) {
            data.writeUInt32LE(i, 0);
            await store.write('disk0', nextOffset(), data);
          }
          await store.flush();
        })
        .add('plain', () => {
          for (let i = 0; i < batch; i++) {
            data.writeUInt32LE(i, 0);
            writeSync(plainFd, data, 0, writeBytes, nextOffset());
          }
          fdatasyncSync(plainFd);
        });
      const started = performance.now();
      await bench.run();
      const before = store.lastSeq;
      await store.settle();
      const seconds = (performance.now() - started) / 1000;
      const mean = (name: string) => bench.tasks.find((t) => t.name === name)!.result!;
      const ms = (name: string) => {
        const r = mean(name) as unknown as { latency?: { mean: number }; mean?: number };
        return r.latency?.mean ?? r.mean ?? NaN;
      };
      const perBatchBytes = batch * writeBytes;
      const rewindMBps = perBatchBytes / (ms('rewind') / 1000) / 1e6;
      const plainMBps = perBatchBytes / (ms('plain') / 1000) / 1e6;
      rows.push({
        writeBytes,
        writesPerBatch: batch,
        rewindMBps,
        rewindWritesPerSec: (rewindMBps * 1e6) / writeBytes,
        plainMBps,
        ratio: rewindMBps / plainMBps,
        appliedMBps: (before * writeBytes) / seconds / 1e6,
      });
      closeSync(plainFd);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

if (isMain(import.meta.url)) {
  const rows = await benchCapture({ quick: process.argv.includes('--quick') });
  console.table(rows.map((r) => ({ write: `${r.writeBytes / 1024} KiB`, 'rewind MB/s': r.rewindMBps.toFixed(0), 'rewind writes/s': r.rewindWritesPerSec.toFixed(0), 'plain MB/s': r.plainMBps.toFixed(0), 'rewind/plain': r.ratio.toFixed(2), 'applied MB/s': r.appliedMBps.toFixed(0) })));
}
