// `rewind rollback`: sets production volumes back to a held point in place, rewriting only the blocks
// changed since (as new writes, so the rollback can be undone). It needs the writer's lock: with
// `rewind serve` running it refuses (exit 3, naming the pid) and changes nothing. Bad arguments
// (unknown volume, malformed or unheld target) are refused before anything is written.
import { readConfig } from '../../config.js';
import { badArgument, RewindError, unknownVolume } from '../../errors.js';
import { liveWriter } from '../../lock.js';
import { rollbackProduction, type RollbackResult } from '../../recovery-ops/rollback-production.js';
import { describeTarget } from '../../restore/target.js';
import { ROLLBACK_FILE } from '../../recovery-ops/rollback-intent.js';
import { nodeStorage } from '../../storage/node-storage.js';
import { joinPath } from '../../storage/storage.js';
import { Store } from '../../store/store.js';
import { formatBytes, isoTime } from '../../units.js';
import { parseTarget, requestedTarget } from '../args.js';
import { EXIT } from '../exit-codes.js';
import type { Io } from '../io.js';
import { progressBar } from '../progress.js';

export interface RollbackOptions {
  volume?: string;
  all?: boolean;
  seq?: string;
  time?: string;
  tx?: string;
  nearest?: boolean;
  json?: boolean;
}

export async function rollbackCommand(io: Io, store: string, opts: RollbackOptions): Promise<number> {
  // Everything that can be checked without the lock is checked first: a refusal changes nothing.
  if ((opts.volume !== undefined) === (opts.all === true)) throw badArgument('give exactly one of --volume NAME or --all');
  const target = parseTarget(opts);
  const config = readConfig(nodeStorage, store);
  const known = config.volumes.map((v) => v.name);
  const names = opts.all ? known : [opts.volume!];
  for (const n of names) if (!known.includes(n)) throw unknownVolume(n, known);
  const pid = liveWriter(store);
  if (pid !== null) throw locked(store, pid);
  let writer: Store;
  try {
    writer = await Store.open(store, { onWarning: (m) => io.err(`rewind: ${m}\n`) });
  } catch (err) {
    if (err instanceof RewindError && err.code === 'STORE_LOCKED') throw locked(store, liveWriter(store));
    throw err;
  }
  const bar = progressBar(`rollback ${names.join(', ')}`);
  const started = performance.now();
  let result: RollbackResult;
  let time: string | null;
  try {
    result = await rollbackProduction(writer, { volumes: names, target, nearest: opts.nearest === true, requested: requestedTarget(opts) }, (done, total) => bar.update(done, total));
    bar.stop();
    const t = writer.history.held.pointTime(result.seq);
    time = t === null ? null : isoTime(t);
    await writer.close();
  } catch (err) {
    bar.stop();
    await writer.close().catch(() => undefined);
    throw unfinished(store, err);
  }
  const seconds = (performance.now() - started) / 1000;
  const written = result.volumes.reduce((s, v) => s + v.bytesWritten, 0);
  if (opts.json) {
    io.out(JSON.stringify({
      volumes: result.volumes, seq: result.seq, time, requested: requestedTarget(opts), nearest: result.nearest,
      beforeSeq: result.beforeSeq, firstSeq: result.firstSeq, lastSeq: result.lastSeq, bytesWritten: written, seconds,
    }) + '\n');
    return EXIT.OK;
  }
  const point = `seq ${result.seq}${time === null ? '' : ` (${time})`}`;
  const why = result.nearest ? ` — the nearest held point at or before ${describeTarget(target)}` : '';
  for (const v of result.volumes) {
    io.out(`${v.volume}: ${v.blocksWritten} of ${v.changedBlocks} changed blocks rewritten (${formatBytes(v.bytesWritten)})\n`);
  }
  if (result.firstSeq === null) {
    io.out(`rolled ${names.join(', ')} back to ${point}${why}: nothing differed, nothing written (${seconds.toFixed(2)} s)\n`);
  } else {
    io.out(`rolled ${names.join(', ')} back to ${point}${why} as writes ${result.firstSeq}..${result.lastSeq} in ${seconds.toFixed(2)} s\n`);
    const which = opts.all ? '--all' : `--volume ${opts.volume}`;
    io.out(`to undo: rewind rollback ${store} ${which} --seq ${result.beforeSeq}\n`);
  }
  return EXIT.OK;
}

/** A rollback that failed after it began writing: its intent stays, and the next writer finishes it. */
function unfinished(store: string, err: unknown): unknown {
  if (!nodeStorage.exists(joinPath(store, ROLLBACK_FILE))) return err;
  return new RewindError(err instanceof RewindError ? err.code : 'IO', `${(err as Error).message}; the rollback is recorded in ${joinPath(store, ROLLBACK_FILE)}: the next \`rewind rollback\` or \`rewind serve\` on this store finishes it first`, undefined, { cause: err });
}

function locked(store: string, pid: number | null): RewindError {
  const who = pid === null ? 'another process' : `process ${pid}`;
  return new RewindError('STORE_LOCKED', `store ${store} is being written by ${who} (rewind serve?): stop it first — a rollback needs the writer's lock; nothing was changed`);
}
