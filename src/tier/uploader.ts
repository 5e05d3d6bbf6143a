// The uploader: ships a store's sealed history to its tier in the background, while the store is
// written (`rewind serve`). One pass at a time:
//   1. sealed journal segments after the last shipped one, and the packs of applied windows after
//      the end of the shipped chain, SHIP_FILES_IN_FLIGHT at a time, each hashed (SHA-256) first;
//   2. a base image of every volume when one is due (none yet, or much history since the last);
//   3. an index snapshot covering the newest pack or base shipped;
//   4. tier retention (tier-retention.ts), then the manifest is committed (manifest.ts), and only
//      then the objects it no longer lists are deleted (a crash in between leaves them listed under
//      `deleting`, and the next pass deletes them again).
// Nothing is acknowledged as shipped before the manifest naming it is committed: after a crash or a
// failed request the next pass starts from the committed manifest and uploads again what it lacks.
// Failures are retried with backoff and jitter (retry.ts per request; here per pass, up to
// PASS_RETRY_CAP_MS), and the store keeps every file not shipped yet (hold()).
//
// Only window packs are shipped: the lifecycle merges or drops no pack before it is shipped (the
// hold), so a merged pack covers packs the tier has already and is skipped.
import { createHash } from 'node:crypto';
import { readAsync, type Storage } from '../storage/storage.js';
import { encodeTxEntry } from '../transactions/transactions.js';
import type { RetentionPolicy } from '../lifecycle/retention.js';
import { assert } from '../errors.js';
import { lowerBound } from '../sorted.js';
import type { HistoryHold } from '../store/open.js';
import { shipBase } from './base-image.js';
import { forEachBounded } from './bounded.js';
import { emptyManifest, indexKey, ManifestLog, newestBase, packKey, segmentKey, sha256, type Manifest, type ShippedPack, type ShippedSegment } from './manifest.js';
import type { ObjectStore } from './object-store.js';
import type { SealedFile, ShipSource } from './ship-source.js';
import { applyTierRetention } from './tier-retention.js';
import { readShipMarks, writeShipMarks } from './tier-config.js';
import { shipBacklog, type ShipBacklog } from './backlog.js';

export const SHIP_FILES_IN_FLIGHT = 4;
/** A pass commits after this many bytes of files, so a long backlog is acknowledged piece by piece. */
const COMMIT_EVERY_BYTES = 256 * 2 ** 20;
const PASS_RETRY_BASE_MS = 250;
const PASS_RETRY_CAP_MS = 30_000;

export interface UploaderOptions {
  storeId: string;
  dir: string;
  /** The tier's retention (`--tier-retain`), or null: the store's. */
  retain: RetentionPolicy | null;
  /** A new base is taken once the packs shipped since the last one hold this many bytes (default: the largest volume's size). */
  baseAfterBytes?: number;
  /** ... or this long after the last one when anything was written since (default 10 min). */
  baseAfterMs?: number;
  /** Warn when the backlog passes this many bytes (default 1 GiB). */
  backlogWarnBytes?: number;
  /** Pause between passes when nothing is left (default 1 s). */
  idleMs?: number;
  now?: () => number;
  onWarning?: (message: string) => void;
}

export class TierUploader {
  private manifest: Manifest | null = null;
  private readonly log: ManifestLog;
  private running: Promise<void> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private failing = false;
  private backlogLoud = false;
  private lastBaseAt: number;
  /** Totals since start, for metrics. */
  readonly totals = { uploadedBytes: 0, commits: 0, retries: 0, failedPasses: 0 };
  private readonly marks;

  constructor(private readonly store: ObjectStore, private readonly src: ShipSource, private readonly opts: UploaderOptions) {
    this.log = new ManifestLog(store);
    this.marks = readShipMarks(src.storage, opts.dir);
    this.lastBaseAt = this.now();
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** What the lifecycle must keep: everything after what the tier is known to hold. */
  hold(): HistoryHold {
    const m = this.manifest;
    if (!m) return { packsFrom: this.marks.packsThrough + 1, segmentsFrom: this.marks.segmentsThrough + 1 };
    return { packsFrom: chainEnd(m) + 1, segmentsFrom: segmentsEnd(m) + 1 };
  }

  /** Bytes of history not shipped yet and the oldest write they hold (status and metrics). */
  backlog(): ShipBacklog {
    return shipBacklog(this.src, this.manifest, this.marks);
  }

  /** The committed manifest this uploader works from (null before its first look at the tier). */
  get committed(): Manifest | null {
    return this.manifest;
  }

  /** Runs passes in the background until stop(). */
  start(): void {
    if (this.running) return;
    this.running = this.loop();
  }

  /** Asks for a pass soon (after a window is applied, say). */
  kick(): void {
    this.wake?.();
  }

  /**
   * Stops after the pass in flight. `final`: then ships what is left and takes a base at the applied
   * point, so the tier reaches the store's last point (a clean `serve` shutdown); a failure is reported, not thrown.
   */
  async stop(opts: { final?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    if (!opts.final) return;
    try {
      while (await this.pass());
      await this.pass({ forceBase: true });
    } catch (err) {
      this.opts.onWarning?.(`tier: the last shipping pass failed (the next serve ships the rest): ${(err as Error).message}`);
    }
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let waitMs = this.opts.idleMs ?? 1000;
      try {
        const more = await this.pass();
        if (this.failing) this.opts.onWarning?.('tier: shipping resumed');
        this.failing = false;
        failures = 0;
        if (more) waitMs = 0;
      } catch (err) {
        this.totals.failedPasses++;
        failures++;
        if (!this.failing) this.opts.onWarning?.(`tier: shipping failed, retrying: ${(err as Error).message}`);
        this.failing = true;
        waitMs = Math.floor(Math.random() * Math.min(PASS_RETRY_CAP_MS, PASS_RETRY_BASE_MS * 2 ** failures));
      }
      this.checkBacklog();
      if (waitMs > 0 && !this.stopped) await new Promise<void>((r) => {
        const t = setTimeout(r, waitMs);
        this.wake = () => { clearTimeout(t); r(); };
      });
      this.wake = null;
    }
  }

  private checkBacklog(): void {
    const limit = this.opts.backlogWarnBytes ?? 2 ** 30;
    const b = this.backlog();
    if (b.bytes > limit && !this.backlogLoud) {
      this.opts.onWarning?.(`tier: WARNING: ${b.bytes} bytes of history not shipped yet (oldest seq ${b.oldestUnshippedSeq}), over the bound of ${limit}: the tier falls behind, and the store keeps these files until they are shipped`);
      this.backlogLoud = true;
    } else if (b.bytes <= limit / 2 && this.backlogLoud) {
      this.opts.onWarning?.(`tier: backlog back to ${b.bytes} bytes`);
      this.backlogLoud = false;
    }
  }

  /** One pass; resolves true when it stopped early with more to ship. */
  async pass(opts: { forceBase?: boolean } = {}): Promise<boolean> {
    const src = this.src;
    let m = this.manifest ?? (await this.log.latest()) ?? emptyManifest(this.opts.storeId, storeSummary(src));
    this.manifest = m;
    // Deletions a committed manifest asked for (again: a crash may have come between).
    await forEachBounded(m.deleting, SHIP_FILES_IN_FLIGHT, (k) => this.store.delete(k));
    const next: Manifest = { ...m, packs: [...m.packs], segments: [...m.segments], bases: [...m.bases], deleting: [] };
    let budget = COMMIT_EVERY_BYTES;
    // 1. Files: sealed segments and applied packs not in the tier yet.
    const segs = src.sealedSegments().filter((s) => s.lastSeq > segmentsEnd(m));
    const applied = src.appliedSeq();
    let end = chainEnd(m);
    const packs: SealedFile[] = [];
    for (const p of src.packs()) {
      if (p.lastSeq > applied) break;
      if (p.lastSeq <= end) continue; // shipped, or a merge of packs shipped
      if (end > 0 && p.firstSeq !== end + 1) {
        // Only if history was retired locally before it was shipped (the hold prevents it): the chain restarts.
        this.opts.onWarning?.(`tier: pack ${p.firstSeq}-${p.lastSeq} does not follow the shipped chain (ends at seq ${end}); the tier's older packs are let go`);
        next.packs = [];
      }
      packs.push({ firstSeq: p.firstSeq, lastSeq: p.lastSeq, path: p.path });
      end = p.lastSeq;
    }
    const files = [...segs.map((s) => ({ kind: 'segment' as const, f: s })), ...packs.map((p) => ({ kind: 'pack' as const, f: p }))];
    const batch: typeof files = [];
    for (const x of files) {
      if (budget <= 0) break;
      budget -= src.storage.sizeOf(x.f.path);
      batch.push(x);
    }
    const shipped = new Map<string, { bytes: number; sha256: string }>();
    await forEachBounded(batch, SHIP_FILES_IN_FLIGHT, async ({ kind, f }) => {
      const key = kind === 'pack' ? packKey(f.firstSeq, f.lastSeq) : segmentKey(f.firstSeq, f.lastSeq);
      const { bytes, digest } = await hashFile(src.storage, f.path);
      await this.store.putFile(key, f.path, bytes);
      this.totals.uploadedBytes += bytes;
      shipped.set(key, { bytes, sha256: digest });
    });
    const windows = src.windows();
    for (const { kind, f } of batch) {
      const key = kind === 'pack' ? packKey(f.firstSeq, f.lastSeq) : segmentKey(f.firstSeq, f.lastSeq);
      const o = shipped.get(key)!;
      if (kind === 'segment') next.segments.push({ key, firstSeq: f.firstSeq, lastSeq: f.lastSeq, ...o } satisfies ShippedSegment);
      else next.packs.push({ key, firstSeq: f.firstSeq, lastSeq: f.lastSeq, t1: timeAt(windows, f.firstSeq, 't1'), t2: timeAt(windows, f.lastSeq, 't2'), ...o } satisfies ShippedPack);
    }
    const more = batch.length < files.length;
    // 2. A base, when one is due and the chain reaches the applied point (its windows are all in the tier).
    const base = newestBase(next);
    const sinceBase = next.packs.filter((p) => p.lastSeq > (base?.seq ?? 0)).reduce((a, p) => a + p.bytes, 0);
    const baseAfterBytes = this.opts.baseAfterBytes ?? Math.max(...src.config.volumes.map((v) => v.size));
    const due = opts.forceBase || !base || sinceBase >= baseAfterBytes || (this.now() - this.lastBaseAt >= (this.opts.baseAfterMs ?? 600_000) && applied > base.seq);
    if (due && !more && chainEnd(next) === applied && applied > (base?.seq ?? -1)) {
      const t = applied === 0 ? Date.parse(src.config.createdAt) : timeAt(windows, applied, 't2');
      const r = await shipBase(this.store, src, applied, t, base);
      this.totals.uploadedBytes += r.uploadedBytes;
      next.bases.push(r.base);
      this.lastBaseAt = this.now();
    }
    // 3. The index up to the newest point the tier reaches through packs or a base.
    const indexSeq = Math.max(chainEnd(next), newestBase(next)?.seq ?? 0);
    if (!next.index || next.index.seq < indexSeq) {
      const data = Buffer.concat(windows.filter((w) => w.lastSeq <= indexSeq).map(encodeTxEntry));
      const key = indexKey(indexSeq);
      await this.store.put(key, data);
      next.index = { key, seq: indexSeq, bytes: data.byteLength, sha256: sha256(data) };
    }
    // 4. Retention, then the commit.
    const { kept, removed } = applyTierRetention(next, this.opts.retain ?? src.retention(), this.now());
    const replacedIndex = m.index && m.index.key !== kept.index?.key ? [m.index.key] : [];
    const deleting = [...new Set([...removed, ...replacedIndex])];
    const changed = JSON.stringify({ ...kept, deleting: [] }) !== JSON.stringify({ ...m, deleting: [] });
    if (!changed && m.deleting.length === 0) return more;
    let committed: Manifest;
    try {
      committed = await this.log.commit({ ...kept, serial: m.serial + 1, written: new Date(this.now()).toISOString(), store: storeSummary(src), deleting });
    } catch (err) {
      // Whether it went in is unknown (or another uploader went first): the next pass reads the tier again.
      this.manifest = null;
      throw err;
    }
    assert(committed.packs.every((p, i) => i === 0 || p.firstSeq === committed.packs[i - 1].lastSeq + 1), 'the shipped packs form a chain');
    this.manifest = committed;
    this.totals.commits++;
    await writeShipMarks(src.storage, this.opts.dir, { serial: committed.serial, packsThrough: chainEnd(committed), segmentsThrough: segmentsEnd(committed) });
    await forEachBounded(deleting, SHIP_FILES_IN_FLIGHT, (k) => this.store.delete(k));
    return more;
  }
}

export const chainEnd = (m: Manifest) => (m.packs.length > 0 ? m.packs[m.packs.length - 1].lastSeq : 0);
export const segmentsEnd = (m: Manifest) => (m.segments.length > 0 ? m.segments[m.segments.length - 1].lastSeq : 0);

function storeSummary(src: ShipSource): Manifest['store'] {
  const c = src.config;
  return { blockSize: c.blockSize, window: c.window, createdAt: c.createdAt, volumes: c.volumes.map((v) => ({ name: v.name, size: v.size })), retain: c.retain ?? 'all' };
}

/** t1 of the window starting at `seq`, or t2 of the window ending there. */
function timeAt(windows: readonly { firstSeq: number; lastSeq: number; t1: number; t2: number }[], seq: number, which: 't1' | 't2'): number {
  const w = windows[lowerBound(windows, (x) => x.lastSeq >= seq)];
  assert(w && w.firstSeq <= seq, `a shipped pack's window is in the index (seq ${seq})`);
  return w[which];
}

/** Bytes read at a time when a file is hashed, into one buffer per file (no garbage per read). */
const HASH_READ_BYTES = 256 * 1024;

async function hashFile(storage: Storage, path: string): Promise<{ bytes: number; digest: string }> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafeSlow(HASH_READ_BYTES);
  const file = storage.open(path, 'read');
  let bytes = 0;
  try {
    for (;;) {
      const n = await readAsync(file, buf, bytes);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    file.close();
  }
  return { bytes, digest: h.digest('hex') };
}
