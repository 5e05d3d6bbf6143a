// How `rewind restore --dry-run` prints a restore plan (recovery-ops/restore-plan.ts): one line per
// volume, the totals and the estimate with the rates it comes from; or one JSON document.
import type { RestorePlan } from '../recovery-ops/restore-plan.js';
import { describeTarget, type Target } from '../restore/target.js';
import { formatBytes } from '../units.js';
import type { Io } from './io.js';

export interface PlanContext {
  time: string | null;
  requested: string;
  target: Target;
  nearest: boolean;
  outDir: string | null;
  json: boolean;
}

const perSecond = (r: number | null) => (r === null ? 'not measured' : Number.isFinite(r) ? `${formatBytes(Math.round(r))}/s` : 'too fast to time');

export function printPlan(io: Io, plan: RestorePlan, c: PlanContext): void {
  if (c.json) {
    const finite = (n: number | null) => (n !== null && Number.isFinite(n) ? n : null);
    io.out(JSON.stringify({
      dryRun: true, seq: plan.seq, time: c.time, requested: c.requested, nearest: c.nearest, outDir: c.outDir,
      volumes: plan.volumes,
      replicaBytes: plan.replicaBytes, packBytes: plan.packBytes, journalBytes: plan.journalBytes, writeBytes: plan.writeBytes,
      rates: { ...plan.rates, replicaBytesPerSecond: finite(plan.rates.replicaBytesPerSecond), packBytesPerSecond: finite(plan.rates.packBytesPerSecond) },
      estimatedSeconds: plan.estimatedSeconds,
    }) + '\n');
    return;
  }
  const at = `seq ${plan.seq}${c.time === null ? '' : ` (${c.time})`}`;
  const why = c.nearest ? ` — the nearest held point at or before ${describeTarget(c.target)}` : '';
  const n = plan.volumes.length;
  io.out(`dry run: would restore ${n} volume${n === 1 ? '' : 's'} as of ${at}${why}; nothing written\n`);
  for (const v of plan.volumes) {
    io.out(`  ${v.volume} -> ${v.out}: read replica ${formatBytes(v.replicaBytes)}, ${v.packs} pack${v.packs === 1 ? '' : 's'} ${formatBytes(v.packBytes)}, ` +
      `${v.journalWrites} journal write${v.journalWrites === 1 ? '' : 's'} ${formatBytes(v.journalBytes)}; write up to ${formatBytes(v.writeBytes)}\n`);
  }
  io.out(`total: read ${formatBytes(plan.replicaBytes + plan.packBytes + plan.journalBytes)} (replica ${formatBytes(plan.replicaBytes)}, packs ${formatBytes(plan.packBytes)}, ` +
    `journal ${formatBytes(plan.journalBytes)}), write up to ${formatBytes(plan.writeBytes)} (zero chunks of a file stay holes)\n`);
  const r = plan.rates;
  io.out(`estimate: ${plan.estimatedSeconds.toFixed(plan.estimatedSeconds < 10 ? 2 : 0)} s, from read rates measured just now (replica ${perSecond(r.replicaBytesPerSecond)} over ${formatBytes(r.measuredReplicaBytes)}, ` +
    `packs ${perSecond(r.packBytesPerSecond)} over ${formatBytes(r.measuredPackBytes)}); writing is not measured (a dry run writes nothing) and assumed to keep up\n`);
}
