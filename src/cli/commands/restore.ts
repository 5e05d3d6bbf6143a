// `rewind restore`: writes one volume (--volume, --out FILE) or every volume (--all, --out-dir DIR)
// as it was at a target; --dry-run prints the plan instead and writes nothing. A target the store no
// longer holds is refused (exit 2) naming the held points around it; with --nearest the nearest held
// point at or before it is restored instead, and the output says which. The work is the engine's
// (restore/history.ts, recovery-ops/group-restore.ts, recovery-ops/restore-plan.ts).
import type { Io } from '../io.js';
import { openStoreReader } from '../../store/reader.js';
import type { History } from '../../restore/history.js';
import { describeTarget, type Target } from '../../restore/target.js';
import { planGroupOutputs, restoreAll } from '../../recovery-ops/group-restore.js';
import { planRestore } from '../../recovery-ops/restore-plan.js';
import { badArgument } from '../../errors.js';
import { formatBytes, isoTime } from '../../units.js';
import { parseTarget, requestedTarget } from '../args.js';
import { progressBar } from '../progress.js';
import { EXIT } from '../exit-codes.js';
import { printPlan } from '../plan-report.js';

export interface RestoreOptions {
  volume?: string;
  all?: boolean;
  seq?: string;
  time?: string;
  tx?: string;
  out?: string;
  outDir?: string;
  force?: boolean;
  dryRun?: boolean;
  nearest?: boolean;
  json?: boolean;
}

/** One volume to one file, or the whole set to a directory: the flags of each, and nothing of the other. */
function checkShape(opts: RestoreOptions): void {
  if ((opts.volume !== undefined) === (opts.all === true)) {
    throw badArgument('give --volume NAME (one volume, with --out FILE) or --all (every volume, with --out-dir DIR)');
  }
  if (opts.all) {
    if (opts.out !== undefined) throw badArgument('--all writes one file per volume: give --out-dir DIR instead of --out');
    if (opts.outDir === undefined) throw badArgument('--all needs --out-dir DIR (it writes DIR/<volume>.img for every volume)');
  } else {
    if (opts.outDir !== undefined) throw badArgument('--out-dir goes with --all; one volume is written to --out FILE');
    if (opts.force) throw badArgument('--force goes with --all --out-dir (a restore with --out replaces its file)');
    if (opts.out === undefined) throw badArgument('--volume needs --out FILE');
  }
}

export async function restoreCommand(io: Io, store: string, opts: RestoreOptions): Promise<number> {
  checkShape(opts);
  const target = parseTarget(opts);
  const reader = await openStoreReader(store);
  try {
    const history = reader.history;
    if (opts.dryRun) return dryRun(io, history, target, opts);
    return opts.all ? await restoreSet(io, history, target, opts) : await restoreOne(io, history, target, opts);
  } finally {
    reader.close();
  }
}

function pointTime(history: History, seq: number): string | null {
  const t = history.held.pointTime(seq);
  return t === null ? null : isoTime(t);
}

async function restoreOne(io: Io, history: History, target: Target, opts: RestoreOptions): Promise<number> {
  const volume = opts.volume!;
  const out = opts.out!;
  history.volumes.byName(volume);
  const bar = progressBar(`restore ${volume}`);
  try {
    const started = performance.now();
    const r = await history.restore(volume, target, out, (done, total) => bar.update(done, total), { nearest: opts.nearest === true });
    bar.stop();
    const seconds = (performance.now() - started) / 1000;
    const time = pointTime(history, r.seq);
    if (opts.json) {
      io.out(JSON.stringify({ volume, seq: r.seq, time, requested: requestedTarget(opts), nearest: r.nearest, bytes: r.bytes, out, seconds }) + '\n');
    } else if (r.nearest) {
      io.out(`restored ${volume} as of seq ${r.seq}${time === null ? '' : ` (${time})`} — the nearest held point at or before ${describeTarget(target)} — to ${out}: ${formatBytes(r.bytes)} in ${seconds.toFixed(2)} s\n`);
    } else {
      io.out(`restored volume ${volume} at ${describeTarget(target)} (state after seq ${r.seq}) to ${out}: ${formatBytes(r.bytes)} in ${seconds.toFixed(2)} s\n`);
    }
    return EXIT.OK;
  } finally {
    bar.stop();
  }
}

async function restoreSet(io: Io, history: History, target: Target, opts: RestoreOptions): Promise<number> {
  const outDir = opts.outDir!;
  const count = history.volumes.volumes.length;
  let bar = progressBar('restore');
  let barOf = -1;
  const started = performance.now();
  try {
    const r = await restoreAll(history, target, outDir, {
      nearest: opts.nearest === true,
      force: opts.force === true,
      progress: (volume, i, done, total) => {
        if (i !== barOf) {
          bar.stop();
          bar = progressBar(`restore ${volume} (${i + 1}/${count})`);
          barOf = i;
        }
        bar.update(done, total);
      },
    });
    bar.stop();
    const seconds = (performance.now() - started) / 1000;
    const time = pointTime(history, r.seq);
    if (opts.json) {
      io.out(JSON.stringify({ seq: r.seq, time, requested: requestedTarget(opts), nearest: r.nearest, outDir, volumes: r.volumes, bytes: r.bytes, seconds }) + '\n');
      return EXIT.OK;
    }
    const at = `seq ${r.seq}${time === null ? '' : ` (${time})`}`;
    const why = r.nearest ? ` — the nearest held point at or before ${describeTarget(target)}` : describeTarget(target) === `seq ${r.seq}` ? '' : ` — ${describeTarget(target)}`;
    io.out(`restored ${r.volumes.length} volume${r.volumes.length === 1 ? '' : 's'} as of ${at}${why} to ${outDir}: ${formatBytes(r.bytes)} in ${seconds.toFixed(2)} s\n`);
    for (const v of r.volumes) io.out(`  ${v.volume}: ${v.out} (${formatBytes(v.bytes)})\n`);
    return EXIT.OK;
  } finally {
    bar.stop();
  }
}

function dryRun(io: Io, history: History, target: Target, opts: RestoreOptions): number {
  let seq: number;
  let nearest: boolean;
  let outputs: { volume: string; out: string }[];
  if (opts.all) {
    ({ seq, nearest, outputs } = planGroupOutputs(history, target, opts.outDir!, { nearest: opts.nearest, force: opts.force }));
  } else {
    history.volumes.byName(opts.volume!);
    ({ seq, substituted: nearest } = history.resolvePoint(target, { nearest: opts.nearest }));
    outputs = [{ volume: opts.volume!, out: opts.out! }];
  }
  const plan = planRestore(history, seq, outputs);
  printPlan(io, plan, { time: pointTime(history, seq), requested: requestedTarget(opts), target, nearest, outDir: opts.outDir ?? null, json: opts.json === true });
  return EXIT.OK;
}
