// What a clone is on disk, and where: the record `clones/<NAME>.clone` that makes a clone exist and
// holds its point, and the names of the files beside it. Every file of a clone is named after it, so
// `ls clones/` shows the clones and what belongs to each:
//
//   clones/<NAME>.clone          the record (JSON, below); written once (temp, sync, rename, sync dir)
//   clones/<NAME>.overlay        the overlay's blocks: a sparse file the size of the volume (overlay.ts)
//   clones/<NAME>.map            the overlay's block map log (overlay.ts)
//   clones/<NAME>.open-<pid>     a process has the clone open (serve exports it); no sync
//   clones/<NAME>.deleting       a `clone delete` is under way; no sync
//
// record: {"format":"rewind-clone","version":1,"name","volume","seq","time","maxBytes","createdAt"}
// `seq` is the point the clone starts from: as long as the record exists, the history lifecycle keeps
// that point restorable (a durable hold, read like a reader's lease but not tied to a process).
import { badArgument, corrupt } from '../errors.js';
import { LIMITS } from '../limits.js';
import { joinPath, readWholeFile, writeFileAtomic, type Storage } from '../storage/storage.js';

export const CLONES_DIR = 'clones';
export const CLONE_FORMAT = 'rewind-clone';
export const CLONE_VERSION = 1;
/** Longest clone name (as for volumes). */
export const CLONE_NAME_BYTES_MAX = LIMITS.volumeNameBytesMax;
/** Clones one store holds at most (each holds history and an overlay). */
export const CLONES_MAX = 1024;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const RECORD_SUFFIX = '.clone';

export interface CloneRecord {
  format: typeof CLONE_FORMAT;
  version: number;
  name: string;
  volume: string;
  /** The clone starts as the volume was right after this write. */
  seq: number;
  /** The time of that point (ISO), when the store knows it. */
  time: string | null;
  /** Bytes the overlay may hold (whole blocks); null: up to the volume's size. */
  maxBytes: number | null;
  createdAt: string;
}

export interface ClonePaths {
  record: string;
  overlay: string;
  map: string;
  deleting: string;
  /** The marker of process `pid` having the clone open. */
  openBy(pid: number): string;
}

export function clonesDir(storeDir: string): string {
  return joinPath(storeDir, CLONES_DIR);
}

export function clonePaths(storeDir: string, name: string): ClonePaths {
  const base = joinPath(clonesDir(storeDir), name);
  return {
    record: `${base}${RECORD_SUFFIX}`,
    overlay: `${base}.overlay`,
    map: `${base}.map`,
    deleting: `${base}.deleting`,
    openBy: (pid) => `${base}.open-${pid}`,
  };
}

/**
 * A clone name is an export name beside the volumes and their views: letters, digits, '.', '_' and
 * '-' (so no '/', '@' or '='), not starting with '.', at most CLONE_NAME_BYTES_MAX, and not a volume's.
 */
export function validateCloneName(name: string, volumes: readonly string[]): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > CLONE_NAME_BYTES_MAX || !NAME.test(name)) {
    throw badArgument(`clone name "${name}" must be 1-${CLONE_NAME_BYTES_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit (no '/', '@' or '=')`);
  }
  if (volumes.includes(name)) throw badArgument(`clone name "${name}" is the name of a volume: a clone is exported under its name beside the volumes; pick another`);
}

export function encodeRecord(r: CloneRecord): Buffer {
  return Buffer.from(JSON.stringify(r) + '\n');
}

export function decodeRecord(path: string, bytes: Buffer): CloneRecord {
  let r: Partial<CloneRecord>;
  try {
    r = JSON.parse(bytes.toString('utf8')) as Partial<CloneRecord>;
  } catch (err) {
    throw corrupt(path, 0, `not a clone record (${(err as Error).message})`);
  }
  const ok = r.format === CLONE_FORMAT && r.version === CLONE_VERSION && typeof r.name === 'string' && typeof r.volume === 'string'
    && Number.isSafeInteger(r.seq) && r.seq! >= 0 && (r.time === null || typeof r.time === 'string')
    && (r.maxBytes === null || (Number.isSafeInteger(r.maxBytes) && r.maxBytes! > 0)) && typeof r.createdAt === 'string';
  if (!ok) throw corrupt(path, 0, `not a version ${CLONE_VERSION} clone record`);
  return r as CloneRecord;
}

/** Writes the record crash-safely: after this resolves the clone exists (and holds its point). */
export function writeRecord(storage: Storage, storeDir: string, r: CloneRecord): Promise<void> {
  const p = clonePaths(storeDir, r.name);
  return writeFileAtomic(storage, p.record, encodeRecord(r), `${p.record}.tmp-${process.pid}`);
}

export function readRecord(storage: Storage, storeDir: string, name: string): CloneRecord | null {
  const p = clonePaths(storeDir, name);
  if (!storage.exists(p.record)) return null;
  let bytes: Buffer;
  try {
    bytes = readWholeFile(storage, p.record);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null; // deleted meanwhile
    throw err;
  }
  const r = decodeRecord(p.record, bytes);
  if (r.name !== name) throw corrupt(p.record, 0, `the record names clone "${r.name}", not "${name}"`);
  return r;
}

/** The names of the clones that exist (a record is there), sorted. */
export function cloneNames(storage: Storage, storeDir: string): string[] {
  return storage.list(clonesDir(storeDir)).filter((n) => n.endsWith(RECORD_SUFFIX)).map((n) => n.slice(0, -RECORD_SUFFIX.length));
}

/** Every clone record, sorted by name (one removed meanwhile is left out). */
export function listRecords(storage: Storage, storeDir: string): CloneRecord[] {
  const out: CloneRecord[] = [];
  for (const name of cloneNames(storage, storeDir)) {
    const r = readRecord(storage, storeDir, name);
    if (r) out.push(r);
  }
  return out;
}

/**
 * The points clones hold, for the lifecycle: read before every step, like lease files. A record that
 * cannot be read holds nothing it could name, so it stops the lifecycle's pass (the error is
 * reported) rather than let history a clone may need go.
 */
export function cloneHolds(storage: Storage, storeDir: string): { name: string; seq: number }[] {
  return listRecords(storage, storeDir).map((r) => ({ name: r.name, seq: r.seq }));
}
