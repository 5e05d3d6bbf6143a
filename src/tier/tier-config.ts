// A store's second-tier setup and what it has shipped, as two small files in the store directory:
//   tier.json          {format "rewind-tier", version 1, url, endpoint?, region?, storeId, retain?}
//                      written by `rewind tier`; `serve` ships when it is there
//   tier-shipped.json  {serial, packsThrough, segmentsThrough}: how far the last committed manifest
//                      reaches, written after each commit; the lifecycle's hold until the uploader
//                      has read the manifest itself (older than the manifest only ever holds more)
// Both are replaced atomically (temp file, sync, rename, sync the directory).
import { randomUUID } from 'node:crypto';
import { badArgument, corrupt } from '../errors.js';
import { parseRetention } from '../lifecycle/retention.js';
import { joinPath, readWholeFile, writeFileAtomic, type Storage } from '../storage/storage.js';
import { parseTierUrl } from './url.js';

export const TIER_FILE = 'tier.json';
export const SHIPPED_FILE = 'tier-shipped.json';

export interface TierConfig {
  format: 'rewind-tier';
  version: 1;
  /** s3://BUCKET[/PREFIX]: the store's history goes under PREFIX/<storeId>/. */
  url: string;
  endpoint?: string;
  region?: string;
  storeId: string;
  /** A retention spec longer than the store's for the tier (absent: the store's). */
  retain?: string;
}

export interface ShipMarks {
  serial: number;
  /** Every pack ending at or before this seq is in the tier (0: none). */
  packsThrough: number;
  /** Every sealed segment ending at or before this seq is in the tier (0: none). */
  segmentsThrough: number;
}

export function readTierConfig(storage: Storage, dir: string): TierConfig | null {
  const path = joinPath(dir, TIER_FILE);
  if (!storage.exists(path)) return null;
  let c: TierConfig;
  try {
    c = JSON.parse(readWholeFile(storage, path).toString('utf8'));
  } catch (err) {
    throw corrupt(path, 0, `not valid JSON (${(err as Error).message})`);
  }
  if (c?.format !== 'rewind-tier' || c.version !== 1 || typeof c.storeId !== 'string' || typeof c.url !== 'string') throw corrupt(path, 0, 'not a rewind tier configuration');
  parseTierUrl(c.url);
  return c;
}

/** Sets a store's tier up (keeping its store id when it had one, so its history stays where it is). */
export async function writeTierConfig(storage: Storage, dir: string, opts: { url: string; endpoint?: string; region?: string; retain?: string }): Promise<TierConfig> {
  parseTierUrl(opts.url);
  if (opts.retain !== undefined) parseRetention(opts.retain);
  if (opts.endpoint !== undefined && !/^https?:\/\/[^/]+/.test(opts.endpoint)) throw badArgument(`--endpoint "${opts.endpoint}" must be an http:// or https:// URL`);
  const old = readTierConfig(storage, dir);
  const c: TierConfig = { format: 'rewind-tier', version: 1, url: opts.url, storeId: old?.storeId ?? randomUUID() };
  if (opts.endpoint !== undefined) c.endpoint = opts.endpoint;
  if (opts.region !== undefined) c.region = opts.region;
  if (opts.retain !== undefined) c.retain = opts.retain;
  await writeFileAtomic(storage, joinPath(dir, TIER_FILE), Buffer.from(JSON.stringify(c, null, 2) + '\n'));
  return c;
}

export function readShipMarks(storage: Storage, dir: string): ShipMarks {
  const path = joinPath(dir, SHIPPED_FILE);
  if (!storage.exists(path)) return { serial: 0, packsThrough: 0, segmentsThrough: 0 };
  try {
    const m = JSON.parse(readWholeFile(storage, path).toString('utf8')) as ShipMarks;
    if ([m.serial, m.packsThrough, m.segmentsThrough].every((x) => Number.isSafeInteger(x) && x >= 0)) return m;
  } catch {
    // fall through: an unreadable mark holds everything, which is safe
  }
  return { serial: 0, packsThrough: 0, segmentsThrough: 0 };
}

export function writeShipMarks(storage: Storage, dir: string, marks: ShipMarks): Promise<void> {
  return writeFileAtomic(storage, joinPath(dir, SHIPPED_FILE), Buffer.from(JSON.stringify(marks) + '\n'));
}
