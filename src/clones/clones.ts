// Creating, listing and deleting clones, from the writer's process or from any other (the CLI while
// `rewind serve` runs): nothing here needs the writer's lock.
//
// Create: the point is resolved and leased (a lease file in another process), checked to be still
// held, then the empty overlay is written and the record last (temp, sync, rename, sync dir). From the
// record on, the clone's durable hold keeps the point; until then the lease did. A crash before the
// record leaves overlay files and no clone (a later create of that name writes them afresh).
//
// Delete against open (serve exporting the clone to a client), in two processes: an opener writes
// `<NAME>.open-<pid>` and then looks for `<NAME>.deleting`; delete writes `<NAME>.deleting` and then
// looks for live `open-` markers. Whichever writes second sees the other's file: delete refuses
// (naming the pid) or the opener does; never both proceed. Delete then removes the record (the clone
// is gone and its hold ends), then the overlay files.
import { badArgument, RewindError } from '../errors.js';
import { processAlive } from '../lock.js';
import type { History } from '../restore/history.js';
import type { Target } from '../restore/target.js';
import { readWholeFile, replaceFileSync, type Storage } from '../storage/storage.js';
import { isoTime } from '../units.js';
import {
  CLONE_FORMAT, CLONE_VERSION, CLONES_MAX, cloneNames, clonePaths, clonesDir, listRecords, readRecord, validateCloneName, writeRecord, type CloneRecord,
} from './clone-record.js';
import { mapBlockCount, Overlay } from './overlay.js';

/** What clone commands need of a store: its directory and the read side of its history. */
export interface CloneContext {
  dir: string;
  history: History;
}

export interface CloneInfo extends CloneRecord {
  /** Bytes the clone's writes take in its overlay (whole blocks). */
  usedBytes: number;
  /** Processes that have the clone open now (`rewind serve` exporting it). */
  openBy: number[];
}

const storageOf = (ctx: CloneContext): Storage => ctx.history.storage;

/** Creates clone `name` of `volume` at `target`: no byte of the volume is read or copied. */
export async function createClone(ctx: CloneContext, name: string, volume: string, target: Target, opts: { maxBytes?: number | null; now?: number } = {}): Promise<CloneRecord> {
  const { history, dir } = ctx;
  const storage = storageOf(ctx);
  const v = history.volumes.byName(volume);
  validateCloneName(name, history.volumes.names());
  const maxBytes = opts.maxBytes ?? null;
  if (maxBytes !== null && (!Number.isSafeInteger(maxBytes) || maxBytes < history.config.blockSize)) {
    throw badArgument(`--max-bytes ${maxBytes} must be at least one block (${history.config.blockSize} bytes)`);
  }
  if (readRecord(storage, dir, name)) throw badArgument(`clone "${name}" already exists (rewind clone list; rewind clone delete to remove it)`);
  if (cloneNames(storage, dir).length >= CLONES_MAX) throw badArgument(`the store holds ${CLONES_MAX} clones, the limit; delete one first`);
  const seq = history.resolve(target);
  // Leased before it is checked: from here until the record exists the lease keeps the point.
  const release = history.catalog.lease(seq);
  try {
    history.held.check(target, seq);
    const paths = clonePaths(dir, name);
    storage.mkdirp(clonesDir(dir));
    removeQuietly(storage, paths.deleting);
    await Overlay.create(storage, paths, history.config.blockSize, v.size);
    const t = history.held.pointTime(seq);
    const record: CloneRecord = {
      format: CLONE_FORMAT, version: CLONE_VERSION, name, volume, seq, time: t === null ? null : isoTime(t), maxBytes,
      createdAt: isoTime(opts.now ?? Date.now()),
    };
    await writeRecord(storage, dir, record);
    return record;
  } finally {
    release();
  }
}

/** Every clone with what its overlay holds and who has it open, sorted by name. */
export function listClones(ctx: CloneContext): CloneInfo[] {
  const storage = storageOf(ctx);
  return listRecords(storage, ctx.dir).map((r) => ({
    ...r,
    usedBytes: mapBlockCount(storage, clonePaths(ctx.dir, r.name)) * ctx.history.config.blockSize,
    openBy: openers(storage, ctx.dir, r.name),
  }));
}

/** Live processes with `name` open (markers of processes that are gone are removed). */
export function openers(storage: Storage, dir: string, name: string): number[] {
  const prefix = `${name}.open-`;
  const out: number[] = [];
  for (const n of storage.list(clonesDir(dir))) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length));
    if (!Number.isSafeInteger(pid) || pid <= 0) continue;
    if (processAlive(pid)) out.push(pid);
    else removeQuietly(storage, clonePaths(dir, name).openBy(pid));
  }
  return out;
}

/**
 * Marks `name` open by this process, unless a delete is under way; returns the function that takes
 * the mark away. Throws (and leaves no mark) when the clone does not exist or is being deleted.
 */
export function markOpen(storage: Storage, dir: string, name: string): () => void {
  const paths = clonePaths(dir, name);
  const mark = paths.openBy(process.pid);
  replaceFileSync(storage, mark, Buffer.from(`${process.pid}\n`), `${mark}.tmp`);
  const deleter = liveDeleter(storage, paths.deleting);
  if (deleter !== null || !storage.exists(paths.record)) {
    removeQuietly(storage, mark);
    throw badArgument(deleter !== null ? `clone "${name}" is being deleted (by process ${deleter})` : `no clone "${name}"`);
  }
  return () => removeQuietly(storage, mark);
}

/**
 * Deletes clone `name`: its record (the clone and its hold end), then its overlay. Refuses while a
 * process has it open: `openHere` says whether this process does. A name with no record but files
 * left by an interrupted delete has them removed.
 */
export async function deleteClone(ctx: CloneContext, name: string, openHere: (name: string) => boolean = () => false): Promise<{ leftovers: boolean }> {
  const storage = storageOf(ctx);
  const paths = clonePaths(ctx.dir, name);
  const files = [paths.overlay, paths.map, paths.deleting];
  if (!readRecord(storage, ctx.dir, name)) {
    if (!files.some((f) => storage.exists(f))) {
      throw badArgument(`no clone "${name}" (clones: ${cloneNames(storage, ctx.dir).map((n) => `"${n}"`).join(', ') || 'none'})`);
    }
    await removeAll(storage, ctx.dir, files);
    return { leftovers: true };
  }
  if (openHere(name)) throw inUse(name, process.pid);
  replaceFileSync(storage, paths.deleting, Buffer.from(`${process.pid}\n`), `${paths.deleting}.tmp`);
  const others = openers(storage, ctx.dir, name).filter((pid) => pid !== process.pid);
  if (others.length > 0) {
    removeQuietly(storage, paths.deleting);
    throw inUse(name, others[0]);
  }
  // The record first: from here the clone no longer exists and holds nothing.
  storage.remove(paths.record);
  await storage.syncDir(clonesDir(ctx.dir));
  await removeAll(storage, ctx.dir, files);
  return { leftovers: false };
}

function inUse(name: string, pid: number): RewindError {
  return new RewindError('STORE_LOCKED', `clone "${name}" is in use by process ${pid}${pid === process.pid ? ' (this process)' : ' (rewind serve exporting it to a client)'}: disconnect its NBD clients, then delete it`);
}

async function removeAll(storage: Storage, dir: string, files: string[]): Promise<void> {
  for (const f of files) removeQuietly(storage, f);
  await storage.syncDir(clonesDir(dir));
}

/** The pid of a live process deleting the clone, or null (no marker, or its process is gone). */
function liveDeleter(storage: Storage, path: string): number | null {
  if (!storage.exists(path)) return null;
  try {
    const pid = Number.parseInt(readWholeFile(storage, path).toString('utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
  } catch {
    return null; // removed meanwhile
  }
}

function removeQuietly(storage: Storage, path: string): void {
  try {
    storage.remove(path);
  } catch {
    // already gone
  }
}
