// Rolling production back in place: volumes set back to a held point by rewriting only the blocks
// changed since, as new writes through the store's normal write path (journaled, windowed, kept in
// history), so the rollback can itself be undone by rolling back to the point before it.
//
// Why it is exact. Once the store is settled every write is in a pack, so the blocks changed after
// the target T are the blocks the packs after T list (changed-blocks.ts; a superset). For each of
// them a view at T gives its contents then (replica, old contents from the earliest pack after T,
// journal writes up to T) and production its contents now; where they differ the target contents are
// written. A block outside the set has not changed since T. Production then equals the volume at T.
//
// Why the cost follows the bytes changed: the packs after T are read once, and only the changed
// blocks are read from the view and from production; a block already equal is not written.
//
// Why a crash leaves a store that finishes it. The intent (rollback-intent.ts: target, volumes, the
// last write before the rollback) is durable before the first block is written and removed only
// after the last write is flushed. A writer that opens the store and finds it runs the same procedure
// again before anything else writes: the writes it reaches are journaled like any other (or lost with
// the torn tail), and setting a block to its target contents twice is the same as once; blocks
// already set back compare equal and are skipped. The target is leased from the moment the store is
// opened, so retention cannot retire it before the rollback is done.
//
// Why the packs read stay readable: the target and every pack end after it are leased (pinned), so no
// merge or drop touches the packs after T; a merge already running when the pins are taken is waited
// for (the lifecycle's pass in flight, Store.lifecycleIdle) before the packs are listed.
import { assert, badArgument, RewindError } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Catalog } from '../restore/catalog.js';
import type { History, Progress } from '../restore/history.js';
import { describeTarget, type Target } from '../restore/target.js';
import type { PointInTimeView } from '../restore/view.js';
import { joinPath, type Storage } from '../storage/storage.js';
import { changedBlocks, type ChangedBlocks } from './changed-blocks.js';
import { readRollbackIntent, removeRollbackIntent, ROLLBACK_FILE, writeRollbackIntent, type RollbackIntent } from './rollback-intent.js';

/** What a rollback needs of the writer (store/store.ts's Store is one). */
export interface ProductionHost {
  readonly dir: string;
  readonly lastSeq: number;
  readonly history: History;
  readonly limits: Limits;
  write(volume: string, offset: number, data: Uint8Array): Promise<number>;
  read(volume: string, offset: number, length: number): Buffer;
  flush(): Promise<void>;
  settle(): Promise<void>;
  markWindow(): number | null;
  /** Resolves once the lifecycle pass in flight has ended (no merge is in flight then). */
  lifecycleIdle(): Promise<void>;
}

export interface RollbackRequest {
  volumes: readonly string[];
  target: Target;
  /** A target no longer held: set back to the nearest held point at or before it instead. */
  nearest?: boolean;
  /** The target as the user typed it, kept in the intent for messages (default: describeTarget). */
  requested?: string;
}

export interface VolumeRollback {
  volume: string;
  /** Blocks the packs after the target list for this volume (those compared). */
  changedBlocks: number;
  /** Blocks that differed from the target and were rewritten. */
  blocksWritten: number;
  bytesWritten: number;
}

export interface RollbackResult {
  /** The point production was set back to. */
  seq: number;
  /** The target was not held and `seq` is the nearest held point at or before it. */
  nearest: boolean;
  /** The last write before the rollback: rolling back (or restoring) to it undoes this rollback. */
  beforeSeq: number;
  /** The rollback's own writes (null when nothing differed). */
  firstSeq: number | null;
  lastSeq: number | null;
  volumes: VolumeRollback[];
}

/** Largest write of consecutive blocks set back (also bounded by the store's write limit). */
const ROLLBACK_RUN_BYTES = 2 ** 20;
/**
 * Lets the event loop serve (timers, the apply pipeline, a progress bar) after every this many bytes
 * compared: counted in bytes, not time, so a simulation runs the same way every time.
 */
const YIELD_BYTES = 16 * 2 ** 20;

/** Leases taken on a catalog, released together. */
class Pins {
  private readonly releases: (() => void)[] = [];
  constructor(private readonly catalog: Catalog) {}
  add(seq: number): void {
    this.releases.push(this.catalog.lease(seq));
  }
  release(): void {
    for (const r of this.releases.splice(0)) r();
  }
}

/** A rollback found cut short when the store was opened, its target already leased. */
export interface PendingRollback {
  intent: RollbackIntent;
  pins: Pins;
}

/**
 * Sets `request.volumes` back to the target by writing, through `host`, the blocks that changed
 * since. Nothing is written when the target is not held, a volume is unknown, or nothing changed.
 * The caller keeps other writes to these volumes out while it runs (the command line holds the
 * writer's lock). If it fails after it began writing, the intent stays: the next open finishes it.
 */
export async function rollbackProduction(host: ProductionHost, request: RollbackRequest, progress?: Progress): Promise<RollbackResult> {
  const names = [...new Set(request.volumes)];
  if (names.length === 0) throw badArgument('a rollback names at least one volume');
  for (const n of names) host.history.volumes.byName(n);
  const { seq, substituted } = host.history.resolvePoint(request.target, { nearest: request.nearest });
  const pins = new Pins(host.history.catalog);
  try {
    pins.add(seq);
    host.history.held.check({ seq }, seq); // still held now that it is leased
    await host.settle();
    const beforeSeq = host.lastSeq;
    const intent: RollbackIntent = {
      volumes: names, targetSeq: seq, beforeSeq, requested: request.requested ?? describeTarget(request.target), startedAt: new Date().toISOString(),
    };
    let recorded = false;
    const result = await setBack(host, intent, pins, progress, async () => {
      await writeRollbackIntent(host.history.storage, host.dir, intent);
      recorded = true;
    });
    if (recorded) await removeRollbackIntent(host.history.storage, host.dir);
    return { ...result, nearest: substituted };
  } finally {
    pins.release();
  }
}

/**
 * The rollback a previous writer left unfinished (`rollback.json`), with its target leased at once:
 * call before any window is applied, so retention cannot retire the target first. Null when none.
 */
export function pendingRollback(storage: Storage, dir: string, catalog: Catalog): PendingRollback | null {
  const intent = readRollbackIntent(storage, dir);
  if (!intent) return null;
  const pins = new Pins(catalog);
  pins.add(intent.targetSeq);
  return { intent, pins };
}

/** Finishes a rollback cut short (see pendingRollback) and removes its intent. */
export async function finishRollback(host: ProductionHost, pending: PendingRollback, onWarning?: (m: string) => void): Promise<RollbackResult> {
  const { intent, pins } = pending;
  const what = `the rollback of ${intent.volumes.join(', ')} to seq ${intent.targetSeq} (${intent.requested}) started ${intent.startedAt}`;
  try {
    onWarning?.(`finishing ${what}, which the last writer left unfinished`);
    for (const n of intent.volumes) host.history.volumes.byName(n);
    host.history.held.check({ seq: intent.targetSeq }, intent.targetSeq);
    await host.settle();
    const result = await setBack(host, intent, pins, undefined, () => Promise.resolve());
    await removeRollbackIntent(host.history.storage, host.dir);
    onWarning?.(`finished ${what}: production is at seq ${intent.targetSeq}; rolling back to seq ${intent.beforeSeq} undoes it`);
    return { ...result, nearest: false };
  } catch (err) {
    const code = err instanceof RewindError ? err.code : 'IO';
    throw new RewindError(code, `cannot finish ${what}: ${(err as Error).message}. Production may be partly rolled back; `
      + `open the store again once the cause is fixed, or remove ${joinPath(host.dir, ROLLBACK_FILE)} to open it with production as it is`, undefined, { cause: err });
  } finally {
    pins.release();
  }
}

/**
 * The procedure shared by a rollback and its finishing: pin the packs after the target, list the
 * changed blocks, call `beforeWrite` (which makes the intent durable) when there are any, write the
 * blocks that differ, end the window and flush.
 */
async function setBack(host: ProductionHost, intent: RollbackIntent, pins: Pins, progress: Progress | undefined, beforeWrite: () => Promise<void>): Promise<Omit<RollbackResult, 'nearest'>> {
  const { history } = host;
  const T = intent.targetSeq;
  for (const p of history.catalog.packs()) if (p.lastSeq > T) pins.add(p.lastSeq);
  await host.lifecycleIdle(); // a merge that started before the pins is done, and no later step touches these packs
  const after = history.catalog.packs().filter((p) => p.lastSeq > T);
  const views: PointInTimeView[] = [];
  try {
    const plans: { name: string; view: PointInTimeView; changed: ChangedBlocks }[] = [];
    for (const name of intent.volumes) {
      const view = history.view(name, T);
      views.push(view);
      plans.push({ name, view, changed: changedBlocks(history.storage, history.packs, after, view.volume.index) });
    }
    const B = history.config.blockSize;
    const total = plans.reduce((s, p) => s + p.changed.count * B, 0);
    const firstSeq = host.lastSeq + 1;
    const volumes: VolumeRollback[] = [];
    if (total > 0) await beforeWrite();
    const counter = { done: 0, total, yielded: 0, progress };
    for (const plan of plans) volumes.push(await setVolumeBack(host, plan, counter));
    const lastSeq = host.lastSeq;
    if (lastSeq >= firstSeq) {
      host.markWindow();
      await host.flush();
    }
    return { seq: T, beforeSeq: intent.beforeSeq, firstSeq: lastSeq >= firstSeq ? firstSeq : null, lastSeq: lastSeq >= firstSeq ? lastSeq : null, volumes };
  } finally {
    for (const v of views) v.close();
  }
}

interface Counter {
  done: number;
  total: number;
  /** `done` at the last yield to the event loop. */
  yielded: number;
  progress?: Progress;
}

/** Writes the target contents of one volume's changed blocks where production differs. */
async function setVolumeBack(host: ProductionHost, plan: { name: string; view: PointInTimeView; changed: ChangedBlocks }, counter: Counter): Promise<VolumeRollback> {
  const B = host.history.config.blockSize;
  const runBlocks = Math.max(1, Math.floor(Math.min(ROLLBACK_RUN_BYTES, host.limits.writeBytesMax) / B));
  const then = Buffer.allocUnsafe(runBlocks * B);
  const out: VolumeRollback = { volume: plan.name, changedBlocks: plan.changed.count, blocksWritten: 0, bytesWritten: 0 };
  for (const { blocks } of plan.changed.groups) {
    // Runs of consecutive blocks (grouped by the pack they are set back from: each pack loaded once).
    for (let i = 0; i < blocks.length;) {
      let n = 1;
      while (i + n < blocks.length && n < runBlocks && blocks[i + n] === blocks[i] + n) n++;
      const at = blocks[i] * B;
      const len = n * B;
      assert(at + len <= plan.view.size, `a changed block lies inside volume "${plan.name}" (block ${blocks[i + n - 1]})`);
      plan.view.read(at, len, then.subarray(0, len));
      const now = host.read(plan.name, at, len);
      // Each stretch of blocks that differ goes out as one write.
      for (let k = 0; k < n;) {
        if (now.subarray(k * B, (k + 1) * B).equals(then.subarray(k * B, (k + 1) * B))) {
          k++;
          continue;
        }
        let m = k + 1;
        while (m < n && !now.subarray(m * B, (m + 1) * B).equals(then.subarray(m * B, (m + 1) * B))) m++;
        await host.write(plan.name, at + k * B, then.subarray(k * B, m * B));
        out.blocksWritten += m - k;
        out.bytesWritten += (m - k) * B;
        k = m;
      }
      i += n;
      counter.done += len;
      counter.progress?.(counter.done, counter.total);
      if (counter.done - counter.yielded >= YIELD_BYTES) {
        await new Promise((r) => setImmediate(r));
        counter.yielded = counter.done;
      }
    }
  }
  return out;
}
