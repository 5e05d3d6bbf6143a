// The tier manifest: the one list of what a store's tier holds. Every object the uploader ships is
// immutable, named by its kind and seq range, and becomes part of the tier only when a manifest that
// lists it (with its SHA-256) is committed; the manifest goes up last. Nothing lists the bucket:
// restore, log, status and tier retention all read the manifest.
//
// Objects, under s3://BUCKET/PREFIX/<store-id>/:
//   journal/<first>-<last>.seg          a sealed journal segment, byte for byte
//   packs/<first>-<last>.pack           a pack of the chain, byte for byte (window packs; see uploader.ts)
//   index/<seq>.idx                     the transaction index entries of windows ending at or before seq
//   bases/<volume>/<seq>/<n>.chunk      chunk n (CHUNK bytes) of a volume's image after write seq
//   manifest/<serial>.json              manifest number <serial> (16 digits), created once (If-None-Match)
//   manifest.json                       a copy of the newest manifest (a reader starts there)
//
// Manifest (JSON, UTF-8):
//   format "rewind-tier-manifest" | version 1 | serial (1, 2, ...) | storeId | written (ISO)
//   store {blockSize, window, createdAt, volumes [{name, size}], retain}
//   packs    [{key, firstSeq, lastSeq, t1, t2, bytes, sha256}]   the chain shipped, contiguous, oldest first
//   segments [{key, firstSeq, lastSeq, bytes, sha256}]           sealed segments shipped, oldest first
//   index    {key, seq, bytes, sha256} | null                    the newest index snapshot
//   bases    [{seq, time, volumes [{name, size, chunkBytes, chunks [{key, bytes, sha256} | null (zeros)]}]}]
//   deleting [key]                 objects this manifest no longer lists, removed after it is committed
//   checksum                       SHA-256 (hex) of the JSON text of all the fields above
//
// Commit order: objects first, then manifest/<serial>.json by a conditional create, then manifest.json.
// A crash leaves a newest serial that manifest.json does not name yet: readers and the uploader look
// for serial + 1, + 2, ... until one is missing. A lost race (another uploader on the same store id)
// fails the commit instead of overwriting.
import { createHash } from 'node:crypto';
import { corrupt, tierFailed } from '../errors.js';
import { seqName } from '../encoding/fields.js';
import { objectKey, type ObjectStore } from './object-store.js';

export const MANIFEST_FORMAT = 'rewind-tier-manifest';
export const MANIFEST_VERSION = 1;
export const MANIFEST_POINTER = 'manifest.json';
/** Bytes per base image chunk: the unit of upload, of dedup against the previous base, and of a ranged restore. */
export const BASE_CHUNK_BYTES = 4 * 2 ** 20;

export interface ShippedObject {
  key: string;
  bytes: number;
  sha256: string;
}
export interface ShippedPack extends ShippedObject {
  firstSeq: number;
  lastSeq: number;
  t1: number;
  t2: number;
}
export interface ShippedSegment extends ShippedObject {
  firstSeq: number;
  lastSeq: number;
}
export interface ShippedIndex extends ShippedObject {
  seq: number;
}
export interface BaseVolume {
  name: string;
  size: number;
  chunkBytes: number;
  /** null: a chunk of zeros (not stored). */
  chunks: (ShippedObject | null)[];
}
export interface BaseSet {
  seq: number;
  time: number;
  volumes: BaseVolume[];
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  serial: number;
  storeId: string;
  written: string;
  store: { blockSize: number; window: string; createdAt: string; volumes: { name: string; size: number }[]; retain: string };
  packs: ShippedPack[];
  segments: ShippedSegment[];
  index: ShippedIndex | null;
  bases: BaseSet[];
  deleting: string[];
}

export const packKey = (firstSeq: number, lastSeq: number) => `packs/${seqName(firstSeq)}-${seqName(lastSeq)}.pack`;
export const segmentKey = (firstSeq: number, lastSeq: number) => `journal/${seqName(firstSeq)}-${seqName(lastSeq)}.seg`;
export const indexKey = (seq: number) => `index/${seqName(seq)}.idx`;
export const baseChunkKey = (volume: string, seq: number, n: number) => objectKey('bases', volume, seqName(seq), `${String(n).padStart(8, '0')}.chunk`);
export const manifestKey = (serial: number) => `manifest/${seqName(serial)}.json`;

export const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Every object a manifest lists (not those it is deleting). */
export function listedKeys(m: Manifest): Set<string> {
  const keys = new Set<string>();
  for (const p of m.packs) keys.add(p.key);
  for (const s of m.segments) keys.add(s.key);
  if (m.index) keys.add(m.index.key);
  for (const b of m.bases) for (const v of b.volumes) for (const c of v.chunks) if (c) keys.add(c.key);
  return keys;
}

/** Points the tier reaches from a base: the newest base, and the sealed journal after it without a gap. */
export function newestBase(m: Manifest): BaseSet | null {
  return m.bases.length > 0 ? m.bases[m.bases.length - 1] : null;
}

function encode(m: Manifest): Buffer {
  const { ...body } = m as Manifest & { checksum?: string };
  delete body.checksum;
  const text = JSON.stringify(body);
  return Buffer.from(JSON.stringify({ ...body, checksum: sha256(Buffer.from(text)) }, null, 1) + '\n');
}

function decode(where: string, data: Buffer): Manifest {
  let parsed: Manifest & { checksum?: string };
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw corrupt(where, 0, `manifest is not valid JSON (${(err as Error).message})`);
  }
  if (parsed?.format !== MANIFEST_FORMAT) throw corrupt(where, 0, 'not a rewind tier manifest');
  if (parsed.version !== MANIFEST_VERSION) throw corrupt(where, 0, `manifest version ${parsed.version} is not supported (expected ${MANIFEST_VERSION})`);
  const { checksum, ...body } = parsed;
  if (checksum !== sha256(Buffer.from(JSON.stringify(body)))) throw corrupt(where, 0, 'manifest checksum mismatch');
  for (let i = 1; i < body.packs.length; i++) {
    if (body.packs[i].firstSeq !== body.packs[i - 1].lastSeq + 1) throw corrupt(where, 0, `manifest packs do not form a chain at ${body.packs[i].key}`);
  }
  return body;
}

/** Reads and commits manifests of one store's tier. */
export class ManifestLog {
  constructor(private readonly store: ObjectStore) {}

  private async read(key: string): Promise<Manifest | null> {
    const data = await this.store.get(key);
    return data === null ? null : decode(`${this.store.where}/${key}`, data);
  }

  /** The newest committed manifest, or null when the tier holds none yet. */
  async latest(): Promise<Manifest | null> {
    let m = await this.read(MANIFEST_POINTER);
    // A crash between the versioned create and the pointer: the newer serials exist; take the last.
    for (let serial = (m?.serial ?? 0) + 1; ; serial++) {
      const next = await this.read(manifestKey(serial));
      if (next === null) return m;
      m = next;
    }
  }

  /** Commits `next` (its serial one past the newest) and returns it as stored. */
  async commit(next: Manifest): Promise<Manifest> {
    const body = encode(next);
    const key = manifestKey(next.serial);
    if (!(await this.store.put(key, body, { ifAbsent: true }))) {
      // The create may have reached the service before a connection broke: then it is this very body.
      const there = await this.store.get(key);
      if (!there || !there.equals(body)) {
        const theirs = there ? decode(`${this.store.where}/${key}`, there).written : 'unreadable';
        throw tierFailed(`${this.store.where}: manifest ${next.serial} was committed by another uploader of store ${next.storeId} (at ${theirs}; this one at ${next.written}); stop the other one (only one writer ships a store)`);
      }
    }
    await this.store.put(MANIFEST_POINTER, body);
    return next;
  }
}

/** An empty manifest for a store (serial 0: nothing committed). */
export function emptyManifest(storeId: string, store: Manifest['store']): Manifest {
  return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, serial: 0, storeId, written: new Date(0).toISOString(), store, packs: [], segments: [], index: null, bases: [], deleting: [] };
}
