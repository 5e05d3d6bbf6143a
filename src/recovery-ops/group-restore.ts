// Group restore: every volume of the set written as of one point, `<dir>/<volume>.img` each. A volume
// set holds one application's state, so the files are only useful together: the target is resolved
// once (one seq for all), that point is leased for the whole run (no writer may retire it between
// one volume and the next), every volume is written under its temporary name and synced, and only
// then are they all renamed into place. A failure before the renames removes every temporary file:
// the directory is left as it was. Existing files are refused unless `force` is given.
import { badArgument } from '../errors.js';
import type { History, Progress } from '../restore/history.js';
import { RestoreOutput } from '../restore/output.js';
import type { Target } from '../restore/target.js';
import { joinPath } from '../storage/storage.js';

export interface GroupRestoreOptions {
  /** With a target no longer held: the nearest held point at or before it. */
  nearest?: boolean;
  /** Replace existing `<volume>.img` files. */
  force?: boolean;
  /** Called per volume as it is written. */
  progress?: (volume: string, index: number, done: number, total: number) => void;
}

export interface GroupRestoreResult {
  seq: number;
  /** The target was not held and `seq` is the nearest held point at or before it. */
  nearest: boolean;
  volumes: { volume: string; out: string; bytes: number }[];
  bytes: number;
}

/** The file a group restore writes for `volume`. */
export function groupOutPath(outDir: string, volume: string): string {
  return joinPath(outDir, `${volume}.img`);
}

/**
 * The point a group restore (or its plan) writes every volume at, and the files it writes, checked:
 * the target held (or its nearest, with `nearest`), and without `force` no file there already.
 */
export function planGroupOutputs(history: History, target: Target, outDir: string, opts: { nearest?: boolean; force?: boolean }): { seq: number; nearest: boolean; outputs: { volume: string; out: string; size: number }[] } {
  const { seq, substituted } = history.resolvePoint(target, { nearest: opts.nearest });
  const outputs = history.volumes.volumes.map((v) => ({ volume: v.name, out: groupOutPath(outDir, v.name), size: v.size }));
  if (!opts.force) {
    const there = outputs.filter((o) => history.storage.exists(o.out)).map((o) => o.out);
    if (there.length > 0) throw badArgument(`${there.join(', ')} ${there.length === 1 ? 'exists' : 'exist'} already; --force replaces ${there.length === 1 ? 'it' : 'them'}`);
  }
  return { seq, nearest: substituted, outputs };
}

export async function restoreAll(history: History, target: Target, outDir: string, opts: GroupRestoreOptions = {}): Promise<GroupRestoreResult> {
  const plan = planGroupOutputs(history, target, outDir, opts);
  const { seq } = plan;
  // One lease on the point for the whole set, checked once it is there (a writer in another
  // process may have retired the point after it was resolved).
  const release = history.catalog.lease(seq);
  const written: RestoreOutput[] = [];
  try {
    history.held.check({ seq }, seq);
    try {
      history.storage.mkdirp(outDir);
    } catch (err) {
      throw badArgument(`--out-dir ${outDir}: cannot create it as a directory (${(err as Error).message})`);
    }
    try {
      for (const [i, o] of plan.outputs.entries()) {
        const out = RestoreOutput.open(history.storage, o.out, o.size, o.volume);
        written.push(out);
        const progress: Progress | undefined = opts.progress && ((done, total) => opts.progress!(o.volume, i, done, total));
        await history.restoreInto(o.volume, seq, out, progress);
      }
      // Every volume is whole and synced: now they go in place together.
      for (const out of written) out.commit();
    } catch (err) {
      for (const out of written) out.abandon();
      throw err;
    }
    await RestoreOutput.syncDirs(history.storage, written);
  } finally {
    release();
  }
  const volumes = plan.outputs.map((o) => ({ volume: o.volume, out: o.out, bytes: o.size }));
  return { seq, nearest: plan.nearest, volumes, bytes: volumes.reduce((s, v) => s + v.bytes, 0) };
}
