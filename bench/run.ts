// `npm run bench`: every benchmark, side by side in one run; prints tables and writes the figures
// as JSON (bench-results.json, or the path given with --json-out). --quick: short runs (~3 min);
// --only kernels,capture,pipeline,restore,rollback,clone,diff,e2e,recovery,sustained,lifecycle,bisect,tier runs a subset. The long crash-simulation
// sweep runs only when asked for, with --only sim or --sim-seeds N (N defaults to SIM_SEEDS, else
// 500): `npm run bench -- --only sim --sim-seeds 500` runs just the sweep.
import { writeFileSync } from 'node:fs';
import { benchKernels } from './kernels.js';
import { benchCapture } from './capture.js';
import { benchPipeline, printPipeline } from './pipeline.js';
import { benchRestore, printRestore } from './restore.js';
import { benchRollback, printRollback } from './rollback.js';
import { benchClone, printClone } from './clone.js';
import { benchDiff, printDiff } from './diff.js';
import { benchE2E, printE2E } from './e2e.js';
import { benchSustained, printSustained } from './sustained.js';
import { benchLifecycle, printLifecycle } from './lifecycle.js';
import { benchSimSweep, printSimSweep } from './sim-sweep.js';
import { benchBisect, printBisect } from './bisect.js';
import { benchRecovery, printRecovery } from './recovery.js';
import { benchTier, printTier } from './tier.js';
import { fixed } from './format.js';

const quick = process.argv.includes('--quick');
const outIndex = process.argv.indexOf('--json-out');
const outPath = outIndex > 0 ? process.argv[outIndex + 1] : 'bench-results.json';
const onlyIndex = process.argv.indexOf('--only');
const only = onlyIndex > 0 ? new Set(process.argv[onlyIndex + 1].split(',')) : null;
const want = (name: string) => only === null || only.has(name);
const simIndex = process.argv.indexOf('--sim-seeds');
const simSeeds = Number(simIndex > 0 ? process.argv[simIndex + 1] : (process.env.SIM_SEEDS ?? 500));

const f = (n: number | null, digits = 2) => fixed(n, digits);
const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, quick };
const started = performance.now();
const save = () => writeFileSync(outPath, JSON.stringify({ ...results, seconds: (performance.now() - started) / 1000 }, null, 2) + '\n');

if (want('kernels')) {
  console.log('\nKernels (1 MiB inputs): WebAssembly SIMD vs TypeScript reference vs Buffer.copy of the same bytes');
  const kernels = await benchKernels({ quick });
  console.table(kernels.map((k) => ({ kernel: k.kernel, 'wasm GB/s': f(k.wasmGBps), 'ts GB/s': f(k.tsGBps), 'copy GB/s': f(k.copyGBps), 'wasm/ts': f(k.wasmVsTs, 1), 'wasm/copy': f(k.wasmVsCopy) })));
  results.kernels = kernels;
  save();
}

if (want('capture')) {
  console.log('\nEmbedded capture: Store.write (journal + production, windows applied in the background) vs plain file writes');
  const capture = await benchCapture({ quick });
  console.table(capture.map((r) => ({ write: `${r.writeBytes / 1024} KiB`, 'rewind MB/s': f(r.rewindMBps, 0), 'rewind writes/s': f(r.rewindWritesPerSec, 0), 'plain MB/s': f(r.plainMBps, 0), 'rewind/plain': f(r.ratio), 'applied MB/s': f(r.appliedMBps, 0) })));
  results.capture = capture;
  save();
}

if (want('pipeline')) {
  console.log("\nPipeline: Store.write as fast as it goes (mixed 4 KiB random / 64 KiB sequential, window 'bytes:16M'), increment builder + replica apply with 1, 2, N workers");
  const pipeline = await benchPipeline({ quick });
  printPipeline(pipeline);
  results.pipeline = pipeline;
  save();
}

if (want('restore')) {
  console.log('\nRestore: a filled volume to points 1..1000 windows back vs cp of the replica; opening a <vol>@seq= view as the volume grows');
  const restore = await benchRestore({ quick });
  printRestore(restore);
  results.restore = restore;
  save();
}

if (want('rollback')) {
  console.log('\nRollback of production in place: the same change set rolled back on sparse volumes of 64 MiB to 16 GiB, against a restore of the same point to a file');
  const rollback = await benchRollback({ quick });
  printRollback(rollback);
  results.rollback = rollback;
  save();
}

if (want('clone')) {
  console.log('\nClones against volume size: `rewind clone create` and the first read of the clone (as serve does for a client), sparse volumes of 64 MiB to 16 GiB with the same history');
  const clone = await benchClone({ quick });
  printClone(clone);
  results.clone = clone;
  save();
}

if (want('diff')) {
  console.log('\n`rewind diff` against volume size: the extents of the same change set on sparse volumes of 64 MiB to 16 GiB (no volume read)');
  const diff = await benchDiff({ quick });
  printDiff(diff);
  results.diff = diff;
  save();
}

if (want('e2e')) {
  console.log('\nEnd to end: fio --ioengine=nbd through `rewind serve` vs nbdkit (alternating rounds, median); and the NBD layer alone (memory) vs nbdkit memory');
  const e2e = await benchE2E({ quick, log: (m) => console.log(m) });
  printE2E(e2e);
  results.e2e = e2e;
  save();
}

if (want('recovery')) {
  console.log('\nReopening after kill -9 against volume size: sparse 64 MiB and 16 GiB volumes, the same random 4 KiB writes in flight; after a reboot every volume is rebuilt in full');
  const recovery = await benchRecovery({ quick, log: (m) => console.log(m) });
  printRecovery(recovery);
  results.recovery = recovery;
  save();
}

if (want('sustained')) {
  console.log('\nSustained fio load through `rewind serve`: replica lag (captured, not applied) sampled every second, against the configured bound');
  const sustained = await benchSustained({ quick, log: (m) => console.log(m) });
  printSustained(sustained);
  // The per-second samples stay in the JSON.
  results.sustained = sustained;
  save();
}

if (want('lifecycle')) {
  console.log('\nHistory lifecycle under sustained fio load through `rewind serve`, a capacity about a tenth of the bytes written: history against the capacity, lag against its bound, consolidation against capture; points read over NBD between phases, restored by seq and by time');
  const lifecycle = await benchLifecycle({ quick, log: (m) => console.log(m) });
  // Merges under sustained writes: a capacity that keeps minutes, and a write rate the disk can take
  // with the merges (a minute of 1 s windows is merged once all of it is past the windows tier).
  console.log('\nHistory lifecycle with merges under sustained writes: fio at 40 MB/s, minutes merged while it writes; consolidation against capture');
  lifecycle.push(...(await benchLifecycle({
    quick, log: (m) => console.log(m), seconds: quick ? 90 : 180, rateMBps: 40, capacityBytes: 16 * 2 ** 30,
    retain: 'writes:5s,windows:15s,minutely:1h', workload: '64 KiB sequential write at 40 MB/s, QD4',
  })));
  printLifecycle(lifecycle);
  results.lifecycle = lifecycle;
  save();
}

if (want('bisect')) {
  console.log('\nBisect: probes against writes searched (a real NBD client as the probe, one planted bad write)');
  const bisect = await benchBisect({ quick });
  printBisect(bisect);
  results.bisect = bisect;
  save();
}

if (want('tier')) {
  console.log('\nSecond tier under sustained writes: fio through `rewind serve` shipping to S3 (a Ceph of its own, or REWIND_TIER_ENDPOINT): upload against capture, the backlog over time; then one volume restored from the tier alone and locally');
  const tier = await benchTier({ quick, log: (m) => console.log(m) });
  printTier(tier);
  results.tier = tier;
  save();
}

if (simIndex > 0 || only?.has('sim')) {
  console.log(`\nCrash simulation sweep: ${simSeeds} seeds (the test suite runs its small default), seeds per second and the outcome`);
  const sim = await benchSimSweep({ seeds: simSeeds, log: (m) => console.log(m) });
  printSimSweep(sim);
  results.sim = sim;
  if (sim.exitCode !== 0) process.exitCode = 1;
  save();
}

save();
console.log(`\nfigures written to ${outPath} (${f((performance.now() - started) / 1000, 0)} s)`);
