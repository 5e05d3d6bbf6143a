// verify: reads every checksummed byte of a store and checks the pieces against each other:
// every journal record (header and payload), every pack (header, sections, encodings), every
// transaction index entry against its pack and journal position, and the replica against the
// newest forward increment of every block it holds. Damage is reported with file and position.
import { RewindError } from '../errors.js';
import { readPack, listPacks, type Pack } from '../increment/pack.js';
import type { JournalReader } from '../journal/reader.js';
import { joinPath, type Storage } from '../storage/storage.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import type { VolumeSet } from '../volumes/volume-set.js';

export interface Problem {
  file: string;
  position: number;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  checked: { journalRecords: number; journalBytes: number; packs: number; transactions: number; replicaBlocks: number };
  problems: Problem[];
  notes: string[];
}

export interface VerifyContext {
  storage: Storage;
  dir: string;
  blockSize: number;
  volumes: VolumeSet;
  index: TransactionIndex;
  journal: JournalReader;
  progress?: (phase: string, done: number, total: number) => void;
  /** A writer is running: a half-written last index entry or journal record is expected, not damage. */
  writerActive?: boolean;
}

export function verifyStore(ctx: VerifyContext): VerifyReport {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const checked = { journalRecords: 0, journalBytes: 0, packs: 0, transactions: 0, replicaBlocks: 0 };
  const fail = (err: unknown, file: string) => {
    const m = err instanceof RewindError && err.code === 'CORRUPT' ? /^(.*) at byte (\d+): (.*)$/s.exec(err.message) : null;
    problems.push(m ? { file: m[1], position: Number(m[2]), message: m[3] } : { file, position: 0, message: (err as Error).message });
  };

  // 1. The packs as they are now, then the index: a running writer renames a pack into place
  // before it indexes it, so every entry read after the listing either has its pack listed or was
  // applied after the listing (and is left for the next verify).
  const incDir = joinPath(ctx.dir, 'increments');
  const files = listPacks(ctx.storage, incDir);
  const listedLast = files.length > 0 ? files[files.length - 1].lastSeq : 0;
  ctx.index.refresh();
  const entries = ctx.writerActive ? ctx.index.entries.filter((e) => e.lastSeq <= listedLast) : ctx.index.entries;
  if (ctx.index.damage) problems.push({ file: ctx.index.path, position: ctx.index.damage.position, message: ctx.index.damage.reason });
  const tail = ctx.index.pendingTail;
  if (tail && ctx.writerActive) notes.push(`the last index entry (byte ${tail.position}) is being written by the running writer`);
  else if (tail) problems.push({ file: ctx.index.path, position: tail.position, message: `${tail.reason} (last entry; the next writer to open the store drops it and redoes its window from the pack)` });

  // 2. The journal, every record and payload.
  const firstRecord = new Map<number, { segment: number; position: number }>();
  const wanted = new Set(entries.map((e) => e.firstSeq));
  const segs = ctx.journal.segments(true);
  const stop = ctx.journal.scan({
    fromSeq: 1,
    verifyPayload: true,
    onRecord: (r) => {
      checked.journalRecords++;
      checked.journalBytes += r.length;
      if (wanted.has(r.seq)) firstRecord.set(r.seq, { segment: r.segment, position: r.position });
      if (checked.journalRecords % 4096 === 0) ctx.progress?.('journal', r.segment, segs.length);
    },
  });
  if (stop.kind === 'damaged') problems.push({ file: stop.segment.path, position: stop.position, message: stop.reason });
  if (stop.kind === 'torn') notes.push(`journal ends with an incomplete record at ${stop.segment.path} byte ${stop.position} (a write in progress, or cut off by a crash; the writer removes it on open)`);

  // 3. Packs, and the index entries that point at them.
  const byRange = new Map(files.map((f) => [`${f.firstSeq}-${f.lastSeq}`, f]));
  const packs: { pack: Pack | null; applied: boolean; name: string }[] = [];
  for (const e of entries) {
    checked.transactions++;
    const f = byRange.get(`${e.firstSeq}-${e.lastSeq}`);
    if (!f) {
      problems.push({ file: ctx.index.path, position: (e.id - 1) * 128, message: `transaction ${e.id} (seq ${e.firstSeq}..${e.lastSeq}): its pack is missing` });
      packs.push({ pack: null, applied: true, name: '' });
      continue;
    }
    byRange.delete(`${e.firstSeq}-${e.lastSeq}`);
    const path = joinPath(incDir, f.name);
    let pack: Pack | null = null;
    try {
      pack = readPack(ctx.storage, path);
      checked.packs++;
      if (pack.headerCrc !== e.packCrc) problems.push({ file: path, position: 0, message: `pack header does not match transaction ${e.id}'s record of it` });
      if (pack.header.writes !== e.writes || pack.header.changedBlocks !== e.changedBlocks) problems.push({ file: path, position: 0, message: `pack counts differ from transaction ${e.id}` });
      const jr = firstRecord.get(e.firstSeq);
      if (stop.kind !== 'damaged' && (!jr || jr.segment !== e.journal.segment || jr.position !== e.journal.position)) {
        problems.push({ file: ctx.index.path, position: (e.id - 1) * 128, message: `transaction ${e.id}: journal position of seq ${e.firstSeq} is wrong` });
      }
    } catch (err) {
      fail(err, path);
    }
    packs.push({ pack, applied: true, name: f.name });
    ctx.progress?.('increments', e.id, entries.length);
  }
  // Packs without an index entry: windows being applied right now (a writer prepares one while it
  // finishes the one before), or ones a crash interrupted; each must follow the one before it.
  let expectFirst = (entries[entries.length - 1]?.lastSeq ?? 0) + 1;
  for (const f of [...byRange.values()].sort((a, b) => a.firstSeq - b.firstSeq)) {
    const path = joinPath(incDir, f.name);
    try {
      const pack = readPack(ctx.storage, path);
      checked.packs++;
      if (f.firstSeq === expectFirst) {
        packs.push({ pack, applied: false, name: f.name });
        expectFirst = f.lastSeq + 1;
      } else {
        problems.push({ file: path, position: 0, message: `pack for seq ${f.firstSeq}..${f.lastSeq} has no transaction and does not follow the last one` });
      }
    } catch (err) {
      fail(err, path);
    }
  }

  // 4. The replica: each block equals the newest forward increment that wrote it.
  const B = ctx.blockSize;
  const expected = Buffer.allocUnsafe(B);
  const old = Buffer.allocUnsafe(B);
  const actual = Buffer.allocUnsafe(B);
  for (const v of ctx.volumes.volumes) {
    const seen = new Set<number>();
    for (let i = packs.length - 1; i >= 0; i--) {
      const { pack, applied } = packs[i];
      if (!pack) continue;
      for (const block of pack.blocksOf(v.index).keys()) {
        if (seen.has(block)) continue;
        seen.add(block);
        try {
          pack.decode(v.index, block, 'new', expected, 0);
          const n = v.replica.read(actual, block * B);
          if (n < B) actual.fill(0, n);
          checked.replicaBlocks++;
          if (actual.equals(expected)) continue;
          if (!applied && matchesUnapplied(packs, i, v.index, block, actual, old)) continue;
          if (ctx.writerActive && movedOn(ctx.storage, incDir, listedLast, v.index, block)) {
            checked.replicaBlocks--;
            continue;
          }
          problems.push({ file: v.replicaPath, position: block * B, message: `replica block ${block} of volume "${v.name}" differs from the window that last wrote it (${pack.path})` });
        } catch (err) {
          fail(err, pack.path);
        }
      }
    }
  }
  return { ok: problems.length === 0, checked, problems, notes };
}

/** Did a window applied after the listing (by a running writer) change this block? */
function movedOn(storage: Storage, dir: string, listedLast: number, volume: number, block: number): boolean {
  for (const f of listPacks(storage, dir)) {
    if (f.firstSeq <= listedLast) continue;
    try {
      if (readPack(storage, joinPath(dir, f.name)).blocksOf(volume).has(block)) return true;
    } catch {
      // a pack being written is not damage
    }
  }
  return false;
}

/**
 * A block whose newest window is not applied yet may hold, in the replica, the contents before or
 * after any not-yet-applied window that touched it (replica writes of those windows may or may not
 * have happened, or reached the disk before a crash).
 */
function matchesUnapplied(packs: { pack: Pack | null; applied: boolean }[], newest: number, volume: number, block: number, actual: Buffer, scratch: Buffer): boolean {
  for (let i = newest; i >= 0 && !packs[i].applied; i--) {
    const p = packs[i].pack;
    if (!p || !p.blocksOf(volume).has(block)) continue;
    for (const which of ['new', 'old'] as const) {
      p.decode(volume, block, which, scratch, 0);
      if (actual.equals(scratch)) return true;
    }
  }
  return false;
}
