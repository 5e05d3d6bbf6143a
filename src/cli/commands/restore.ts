// `rewind restore`: writes a volume as it was at a target to a file. A target the store no longer
// holds is refused (exit 2) naming the held points around it; with --nearest the nearest held point
// at or before it is restored instead, and the output says which.
import type { Io } from '../io.js';
import { openStoreReader } from '../../store/reader.js';
import { describeTarget } from '../../restore/target.js';
import { formatBytes, isoTime } from '../../units.js';
import { parseTarget } from '../args.js';
import { progressBar } from '../progress.js';
import { EXIT } from '../exit-codes.js';

export interface RestoreOptions {
  volume: string;
  seq?: string;
  time?: string;
  tx?: string;
  out: string;
  nearest?: boolean;
  json?: boolean;
}

/** The target as the user typed it, with its kind: `seq 12`, `time 2026-11-25T12:00:00Z`, `tx 3`. */
function requested(opts: RestoreOptions): string {
  return opts.seq !== undefined ? `seq ${opts.seq}` : opts.tx !== undefined ? `tx ${opts.tx}` : `time ${opts.time}`;
}

export async function restoreCommand(io: Io, store: string, opts: RestoreOptions): Promise<number> {
  const target = parseTarget(opts);
  const reader = await openStoreReader(store);
  const bar = progressBar(`restore ${opts.volume}`);
  try {
    reader.history.volumes.byName(opts.volume);
    const started = performance.now();
    const r = await reader.history.restore(opts.volume, target, opts.out, (done, total) => bar.update(done, total), { nearest: opts.nearest === true });
    bar.stop();
    const seconds = (performance.now() - started) / 1000;
    const t = reader.history.held.pointTime(r.seq);
    const time = t === null ? null : isoTime(t);
    if (opts.json) {
      io.out(JSON.stringify({ volume: opts.volume, seq: r.seq, time, requested: requested(opts), nearest: r.nearest, bytes: r.bytes, out: opts.out, seconds }) + '\n');
    } else if (r.nearest) {
      io.out(`restored ${opts.volume} as of seq ${r.seq}${time === null ? '' : ` (${time})`} — the nearest held point at or before ${describeTarget(target)} — to ${opts.out}: ${formatBytes(r.bytes)} in ${seconds.toFixed(2)} s\n`);
    } else {
      io.out(`restored volume ${opts.volume} at ${describeTarget(target)} (state after seq ${r.seq}) to ${opts.out}: ${formatBytes(r.bytes)} in ${seconds.toFixed(2)} s\n`);
    }
    return EXIT.OK;
  } finally {
    bar.stop();
    reader.close();
  }
}
