// Reading a store's history from its tier alone, on a node with no local store: restore, log and
// status --from s3://BUCKET/PREFIX/<store-id>. A restore stages what its plan needs (restore-plan.ts)
// as a small store in a temporary directory — rewind.json, the index snapshot, the packs and journal
// segments, the base image as the replica — and restores from it with the local code path
// (src/restore/history.ts), so the result is the local restore's, byte for byte. The staging
// directory is removed at close.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { StoreConfig } from '../config.js';
import { badArgument } from '../errors.js';
import { JournalReader } from '../journal/reader.js';
import { parseRetention } from '../lifecycle/retention.js';
import { DirectoryCatalog } from '../restore/catalog.js';
import { History, type Progress } from '../restore/history.js';
import { resolveTarget, TimeInRetiredWindow, type Target } from '../restore/target.js';
import { nodeStorage } from '../storage/node-storage.js';
import { joinPath, writeFileAtomic, type StorageFile } from '../storage/storage.js';
import { transactionLog, type LogEntry } from '../store/log.js';
import { TransactionIndex, TX_FILE } from '../transactions/transactions.js';
import { VolumeSet } from '../volumes/volume-set.js';
import { isoTime } from '../units.js';
import { fetchAll, type FetchJob } from './download.js';
import { ManifestLog, type Manifest } from './manifest.js';
import type { ObjectStore } from './object-store.js';
import { newestPoint, oldestPoint, planOrExplain, segmentsCovering, type RestorePlan } from './restore-plan.js';
import { tierStatus, type TierStatusReport } from './tier-status.js';

export interface TierRestoreResult {
  seq: number;
  time: number | null;
  bytes: number;
  nearest: boolean;
}

export class TierReader {
  private readonly dir: string;
  private index: TransactionIndex | null = null;

  private constructor(private readonly store: ObjectStore, readonly manifest: Manifest, stagingParent: string) {
    this.dir = mkdtempSync(joinPath(stagingParent, '.rewind-tier-'));
  }

  /** Reads the newest manifest of the store's tier at `store`. */
  static async open(store: ObjectStore, opts: { stagingParent?: string } = {}): Promise<TierReader> {
    const m = await new ManifestLog(store).latest();
    if (!m) throw badArgument(`${store.where} holds no rewind tier manifest (give s3://BUCKET/PREFIX/<store-id>, as \`rewind tier\` printed it)`);
    return new TierReader(store, m, opts.stagingParent ?? tmpdir());
  }

  private config(): StoreConfig {
    const s = this.manifest.store;
    return { format: 'rewind-store', version: 1, blockSize: s.blockSize, window: s.window, createdAt: s.createdAt, volumes: s.volumes, retain: s.retain === 'all' ? undefined : s.retain };
  }

  /** The staged index snapshot (fetched on first use). */
  private async stagedIndex(): Promise<TransactionIndex> {
    if (this.index) return this.index;
    const dir = joinPath(this.dir, 'index');
    nodeStorage.mkdirp(dir);
    const f = nodeStorage.open(joinPath(dir, TX_FILE), 'create');
    try {
      if (this.manifest.index) await fetchAll(this.store, [{ object: this.manifest.index, file: f, at: 0 }]);
    } finally {
      f.close();
    }
    this.index = await TransactionIndex.open(nodeStorage, dir, false);
    return this.index;
  }

  private async fetchFiles(jobs: { object: FetchJob['object']; path: string; size?: number }[], progress?: Progress): Promise<void> {
    const files: StorageFile[] = [];
    try {
      const fetch: FetchJob[] = [];
      for (const j of jobs) {
        nodeStorage.mkdirp(joinPath(j.path, '..'));
        const f = nodeStorage.open(j.path, 'create');
        files.push(f);
        if (j.size !== undefined) f.truncate(j.size);
        fetch.push({ object: j.object, file: f, at: 0 });
      }
      const total = jobs.reduce((a, j) => a + j.object.bytes, 0);
      let done = 0;
      await fetchAll(this.store, fetch, (n) => progress?.((done += n), total));
    } finally {
      for (const f of files) f.close();
    }
  }

  /** The seq a target stands for in the tier (time targets read the journal segments of their window). */
  private async resolve(target: Target, nearest: boolean): Promise<{ seq: number; nearest: boolean }> {
    const m = this.manifest;
    // A seq is what it says; planOrExplain tells a seq the tier does not reach.
    if ('seq' in target) {
      if (!Number.isSafeInteger(target.seq) || target.seq < 0) throw badArgument(`seq ${target.seq} must be a whole number (0 = before the first write)`);
      return { seq: target.seq, nearest: false };
    }
    const index = await this.stagedIndex();
    const newest = newestPoint(m);
    let journalFirstSeq = newest + 1;
    if ('time' in target) {
      // The writes of the window the time falls in (or after the last window), when the tier holds them.
      const i = index.firstEndingAfter(target.time);
      const e = index.entries[i];
      const from = e ? e.firstSeq : (index.last?.firstSeq ?? 1);
      const to = e ? e.lastSeq : newest;
      const segs = segmentsCovering(m, from, Math.max(from, to)) ?? [];
      await this.fetchFiles(segs.map((s) => ({ object: s, path: joinPath(this.dir, 'journal', s.key.slice('journal/'.length)) })));
      if (segs.length > 0) journalFirstSeq = segs[0].firstSeq;
    }
    const journal = new JournalReader(nodeStorage, joinPath(this.dir, 'journal'));
    try {
      const r = resolveTarget({ index, journal, lastSeq: newest, createdAt: Date.parse(m.store.createdAt), now: Date.now(), journalFirstSeq }, target);
      if (r instanceof TimeInRetiredWindow) {
        if (!nearest) throw badArgument(`${'time' in target ? isoTime(target.time) : ''} falls inside a window whose single writes the tier no longer holds; nearest points it holds: seq ${r.afterSeq} and seq ${r.beforeSeq}; --nearest restores the one before`);
        return { seq: r.afterSeq, nearest: true };
      }
      return { seq: r, nearest: false };
    } finally {
      journal.closeFiles();
    }
  }

  /** Restores `volume` as of `target` into `outPath`, from the tier alone. */
  async restore(volume: string, target: Target, outPath: string, progress?: Progress, opts: { nearest?: boolean } = {}): Promise<TierRestoreResult> {
    const m = this.manifest;
    const v = m.store.volumes.find((x) => x.name === volume);
    if (!v) throw badArgument(`unknown volume "${volume}" (volumes in the tier: ${m.store.volumes.map((x) => x.name).join(', ')})`);
    const r = await this.resolve(target, opts.nearest === true);
    let plan: RestorePlan;
    try {
      plan = planOrExplain(m, this.store.where, r.seq);
    } catch (err) {
      const before = opts.nearest ? nearestBefore(m, r.seq) : null;
      if (before === null) throw err;
      plan = planOrExplain(m, this.store.where, before);
      r.nearest = true;
    }
    // Stage: every object the plan needs, fetched together (the prefetch); the base as the replica.
    const bv = plan.base.volumes.find((x) => x.name === volume);
    if (!bv) throw badArgument(`the tier's base at seq ${plan.base.seq} has no volume "${volume}"`);
    const replicaDir = joinPath(this.dir, 'replica');
    for (const d of [replicaDir, joinPath(this.dir, 'increments'), joinPath(this.dir, 'journal')]) nodeStorage.mkdirp(d);
    for (const x of m.store.volumes) nodeStorage.open(joinPath(replicaDir, x.name), 'create').close();
    const files: StorageFile[] = [];
    try {
      const replica = nodeStorage.open(joinPath(replicaDir, volume), 'write');
      files.push(replica);
      replica.truncate(bv.size);
      const jobs: FetchJob[] = bv.chunks.flatMap((c, n) => (c ? [{ object: c, file: replica, at: n * bv.chunkBytes }] : []));
      const staged = [...plan.packs.map((p) => ({ o: p, path: joinPath(this.dir, 'increments', p.key.slice('packs/'.length)) })), ...plan.segments.map((x) => ({ o: x, path: joinPath(this.dir, 'journal', x.key.slice('journal/'.length)) }))];
      for (const { o, path } of staged) {
        const f = nodeStorage.open(path, 'create');
        files.push(f);
        jobs.push({ object: o, file: f, at: 0 });
      }
      const total = jobs.reduce((a, j) => a + j.object.bytes, 0);
      let done = 0;
      await fetchAll(this.store, jobs, (n) => progress?.((done += n), total));
    } finally {
      for (const f of files) f.close();
    }
    const config = this.config();
    await writeFileAtomic(nodeStorage, joinPath(this.dir, 'rewind.json'), Buffer.from(JSON.stringify(config)));
    const index = await this.stagedIndex();
    const volumes = new VolumeSet(nodeStorage, this.dir, config, false);
    const journal = new JournalReader(nodeStorage, joinPath(this.dir, 'journal'));
    try {
      const appliedSeq = plan.base.seq;
      const lastSeq = Math.max(plan.base.seq, plan.seq);
      const history = new History(nodeStorage, config, volumes, index, journal, new DirectoryCatalog(nodeStorage, joinPath(this.dir, 'increments')), {
        lastSeq: () => lastSeq, appliedSeq: () => appliedSeq, now: () => Date.now(),
      });
      const out = await history.restore(volume, { seq: plan.seq }, outPath);
      return { seq: out.seq, time: history.held.pointTime(out.seq), bytes: out.bytes, nearest: r.nearest };
    } finally {
      journal.closeFiles();
      volumes.close();
    }
  }

  /** The points the tier holds at window ends, as `rewind log` prints them. */
  async log(): Promise<LogEntry[]> {
    const m = this.manifest;
    const index = await this.stagedIndex();
    const base = m.bases[m.bases.length - 1];
    // Packs past the newest base restore nothing yet (no base after them); the journal reaches writes from its first contiguous segment.
    const packs = m.packs.filter((p) => base && p.lastSeq <= base.seq && p.firstSeq - 1 >= oldestPoint(m));
    // The journal reaches single writes from the first segment of the run that ends at the newest one.
    let journalFirstSeq = Infinity;
    for (let k = m.segments.length - 1; k >= 0; k--) {
      if (k < m.segments.length - 1 && m.segments[k].lastSeq + 1 !== m.segments[k + 1].firstSeq) break;
      journalFirstSeq = m.segments[k].firstSeq;
    }
    return transactionLog({ entries: index.entries, packs, journalFirstSeq, policy: parseRetention(m.store.retain), now: Date.now() });
  }

  status(): TierStatusReport {
    return tierStatus(this.manifest, this.store.where);
  }

  close(): void {
    this.index?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The newest point the tier can restore at or before `seq` (a pack end or a base), or null. */
function nearestBefore(m: Manifest, seq: number): number | null {
  let best: number | null = null;
  for (const p of m.packs) if (p.lastSeq <= seq) best = p.lastSeq;
  if (m.packs.length > 0 && m.packs[0].firstSeq - 1 <= seq) best = Math.max(best ?? -1, m.packs[0].firstSeq - 1);
  for (const b of m.bases) if (b.seq <= seq) best = Math.max(best ?? -1, b.seq);
  return best !== null && best >= oldestPoint(m) ? best : null;
}
