// restore, log and status `--from s3://BUCKET/PREFIX/<store-id>`: the same commands over a store's
// tier alone, on a node with no local store (src/tier/tier-reader.ts).
import { dirname, resolve } from 'node:path';
import type { Io } from '../io.js';
import { badArgument } from '../../errors.js';
import { describeTarget } from '../../restore/target.js';
import { S3ObjectStore } from '../../tier/s3-store.js';
import { TierReader } from '../../tier/tier-reader.js';
import { parseTierUrl, tierUrl } from '../../tier/url.js';
import { formatBytes, isoTime } from '../../units.js';
import { parseTarget, requestedTarget } from '../args.js';
import { progressBar } from '../progress.js';
import { EXIT } from '../exit-codes.js';

export interface FromOptions {
  from: string;
  endpoint?: string;
  region?: string;
  json?: boolean;
}

/** Exactly one of a store directory and --from. */
export function storeOrTier(store: string | undefined, from: string | undefined): void {
  if (store !== undefined && from !== undefined) throw badArgument(`give a store directory or --from ${from}, not both`);
  if (store === undefined && from === undefined) throw badArgument('give a store directory, or --from s3://BUCKET/PREFIX/<store-id> to read a store\'s tier');
}

async function withReader<T>(opts: FromOptions, stagingParent: string | undefined, fn: (r: TierReader) => Promise<T>): Promise<T> {
  const s3 = new S3ObjectStore(parseTierUrl(opts.from, '--from'), { endpoint: opts.endpoint, region: opts.region });
  try {
    const reader = await TierReader.open(s3, { stagingParent });
    try {
      return await fn(reader);
    } finally {
      reader.close();
    }
  } finally {
    s3.close();
  }
}

export async function restoreFromTier(io: Io, opts: FromOptions & { volume?: string; seq?: string; time?: string; tx?: string; out?: string; nearest?: boolean; all?: boolean; outDir?: string; dryRun?: boolean; force?: boolean }): Promise<number> {
  if (opts.volume === undefined || opts.out === undefined || opts.all || opts.outDir !== undefined || opts.dryRun || opts.force) {
    throw badArgument('restore --from takes --volume NAME and --out FILE (--all, --out-dir, --force and --dry-run work on a local store)');
  }
  return restoreOneFromTier(io, { ...opts, volume: opts.volume, out: opts.out });
}

async function restoreOneFromTier(io: Io, opts: FromOptions & { volume: string; seq?: string; time?: string; tx?: string; out: string; nearest?: boolean }): Promise<number> {
  const target = parseTarget(opts);
  const bar = progressBar(`restore ${opts.volume} from ${tierUrl(parseTierUrl(opts.from, '--from'))}`);
  // Staged next to the output: the same file system, and no surprise in /tmp's size.
  return withReader(opts, dirname(resolve(opts.out)), async (reader) => {
    try {
      const started = performance.now();
      const r = await reader.restore(opts.volume, target, opts.out, (done, total) => bar.update(done, total), { nearest: opts.nearest === true });
      bar.stop();
      const seconds = (performance.now() - started) / 1000;
      const time = r.time === null ? null : isoTime(r.time);
      const requested = requestedTarget(opts);
      if (opts.json) io.out(JSON.stringify({ volume: opts.volume, seq: r.seq, time, requested, nearest: r.nearest, bytes: r.bytes, out: opts.out, seconds, from: opts.from }) + '\n');
      else io.out(`restored volume ${opts.volume} at ${describeTarget(target)} (state after seq ${r.seq}${r.nearest ? ', the nearest point the tier holds before it' : ''}) from ${opts.from} to ${opts.out}: ${formatBytes(r.bytes)} in ${seconds.toFixed(2)} s\n`);
      return EXIT.OK;
    } finally {
      bar.stop();
    }
  });
}

export function logFromTier(io: Io, opts: FromOptions): Promise<number> {
  return withReader(opts, undefined, async (reader) => {
    const log = await reader.log();
    if (opts.json) io.out(JSON.stringify(log) + '\n');
    else if (log.length === 0) io.out('no points in the tier yet\n');
    else for (const e of log) io.out(`${String(e.id).padStart(6)}  ${String(e.firstSeq).padStart(10)}  ${String(e.lastSeq).padStart(10)}  ${e.t1}  ${e.t2}  ${String(e.writes).padStart(7)}  ${formatBytes(e.bytesWritten).padStart(10)}  ${e.granularity}\n`);
    return EXIT.OK;
  });
}

export function statusFromTier(io: Io, opts: FromOptions): Promise<number> {
  return withReader(opts, undefined, async (reader) => {
    const s = reader.status();
    if (opts.json) {
      io.out(JSON.stringify(s) + '\n');
      return EXIT.OK;
    }
    const rows: [string, string][] = [
      ['tier', s.tier],
      ['manifest', `${s.serial} written ${s.written}`],
      ['volumes', s.volumes.map((v) => `${v.name} ${formatBytes(v.size)}`).join(', ')],
      ['restorable', s.oldestRestorable && s.newestRestorable ? `seq ${s.oldestRestorable.seq} to seq ${s.newestRestorable.seq}` : 'nothing yet'],
      ['bases', s.bases.map((b) => `seq ${b.seq} (${b.time})`).join(', ') || 'none'],
      ['objects', `${s.packs} packs, ${s.segments} journal segments, ${formatBytes(s.bytes)}`],
      ['retention', s.retention],
    ];
    io.out(rows.map(([k, v]) => `${k.padEnd(11)} ${v}\n`).join(''));
    return EXIT.OK;
  });
}
