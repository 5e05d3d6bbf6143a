// The rollback intent: `rollback.json` in the store directory, made durable before a rollback of
// production writes its first block and removed once its last write is durable. Finding it on open
// means a rollback was cut short; the writer finishes it before anything else writes
// (recovery-ops/rollback-production.ts). The file is small and rewritten whole (temp, sync, rename,
// sync the directory), so it is there entirely or not at all.
//
// rollback.json (one JSON object)
//   format     "rewind-rollback"          version     1
//   volumes    ["<name>", ...]            the volumes set back (at least one, each once)
//   targetSeq  N                          the point they are set back to (held when it started)
//   beforeSeq  N                          the last write before the rollback's own: restoring or
//                                         rolling back to it undoes the rollback
//   requested  "seq 12" | "time ..." | "tx 3"   the target as it was asked for (for messages)
//   startedAt  ISO 8601                   when the rollback began
import { corrupt } from '../errors.js';
import { joinPath, readWholeFile, writeFileAtomic, type Storage } from '../storage/storage.js';

export const ROLLBACK_FILE = 'rollback.json';
const FORMAT = 'rewind-rollback';
const VERSION = 1;

export interface RollbackIntent {
  volumes: string[];
  targetSeq: number;
  beforeSeq: number;
  requested: string;
  startedAt: string;
}

const pathOf = (dir: string) => joinPath(dir, ROLLBACK_FILE);

/** Makes the intent durable (the rollback may write production once this resolves). */
export async function writeRollbackIntent(storage: Storage, dir: string, intent: RollbackIntent): Promise<void> {
  const body = { format: FORMAT, version: VERSION, ...intent };
  await writeFileAtomic(storage, pathOf(dir), Buffer.from(JSON.stringify(body, null, 2) + '\n'));
}

/** The intent of a rollback cut short, or null when none is pending. A damaged file is a CORRUPT error. */
export function readRollbackIntent(storage: Storage, dir: string): RollbackIntent | null {
  const path = pathOf(dir);
  // A temporary file without the rename: the rollback had not started writing (see writeFileAtomic).
  if (storage.exists(`${path}.tmp`)) storage.remove(`${path}.tmp`);
  if (!storage.exists(path)) return null;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readWholeFile(storage, path).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw corrupt(path, 0, `not a rollback intent (${(err as Error).message}); remove it to open the store with production as it is`);
  }
  const seq = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const volumes = j.volumes;
  const ok = j.format === FORMAT && j.version === VERSION && seq(j.targetSeq) && seq(j.beforeSeq)
    && (j.targetSeq as number) <= (j.beforeSeq as number)
    && Array.isArray(volumes) && volumes.length > 0 && volumes.every((v) => typeof v === 'string')
    && new Set(volumes).size === volumes.length && typeof j.requested === 'string' && typeof j.startedAt === 'string';
  if (!ok) throw corrupt(path, 0, `not a rollback intent of format ${FORMAT} version ${VERSION}; remove it to open the store with production as it is`);
  return { volumes: volumes as string[], targetSeq: j.targetSeq as number, beforeSeq: j.beforeSeq as number, requested: j.requested as string, startedAt: j.startedAt as string };
}

/** Removes the intent durably: the rollback it describes is complete and durable. */
export async function removeRollbackIntent(storage: Storage, dir: string): Promise<void> {
  storage.remove(pathOf(dir));
  await storage.syncDir(dir);
}
