// Crash recovery, run when a writer opens the store: a pack left complete but without its index
// entry is applied again and entered (the replica may hold part of it); production is brought to the
// journal (rebuild.ts: the regions it may hold wrongly taken from the replica first); and the
// journaled writes not applied yet are returned, to be windowed again.
import { listPacks, readPack } from '../increment/pack.js';
import { sectionPlacements } from '../increment/sections.js';
import type { Journal } from '../journal/journal.js';
import type { RecordRef } from '../journal/reader.js';
import { applyWindow, syncReplicas, type ReplicaContext } from '../replica/replica.js';
import { FORWARD } from '../increment/block-encoding.js';
import { loadWindowRecords } from '../increment/window-records.js';
import { assert } from '../errors.js';
import type { MemoryCatalog } from '../restore/catalog.js';
import { joinPath, type Storage } from '../storage/storage.js';
import type { TransactionIndex } from '../transactions/transactions.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import { recordApplied } from './apply.js';
import { bringProductionToJournal, type LastStop } from './rebuild.js';

export interface RecoveryContext {
  dir: string;
  storage: Storage;
  volumes: VolumeSet;
  index: TransactionIndex;
  journal: Journal;
  catalog: MemoryCatalog;
  replica: ReplicaContext;
  onWarning?: (message: string) => void;
}

/**
 * Redo after a crash: finish a window whose pack was written, bring production to the journal.
 * `tail` is every record the journal holds from the last applied window on; `stop` says how the last
 * writer stopped. Returns the records still to be windowed and applied, in seq order.
 */
export async function recover(ctx: RecoveryContext, tail: RecordRef[], stop: LastStop): Promise<RecordRef[]> {
  const { storage, index, journal } = ctx;
  const incDir = joinPath(ctx.dir, 'increments');
  for (const name of storage.list(incDir)) if (name.endsWith('.tmp')) storage.remove(joinPath(incDir, name));
  for (const p of listPacks(storage, incDir)) {
    if (p.lastSeq <= index.appliedSeq) continue;
    const path = joinPath(incDir, p.name);
    const first = tail.find((r) => r.seq === p.firstSeq);
    if (p.firstSeq !== index.appliedSeq + 1 || p.lastSeq > journal.lastSeq || !first) {
      storage.remove(path);
      continue;
    }
    // A pack is complete once it exists (written under a temporary name); the replica may be partly updated: redo.
    const pack = readPack(storage, path);
    const h = pack.header;
    ctx.catalog.add({ firstSeq: p.firstSeq, lastSeq: p.lastSeq, path });
    const records = tail.filter((r) => r.seq >= h.firstSeq && r.seq <= h.lastSeq);
    assert(records.length === h.lastSeq - h.firstSeq + 1, `the journal holds every write of the unapplied window ${h.firstSeq}..${h.lastSeq}`);
    const window = { id: index.nextId, firstSeq: h.firstSeq, lastSeq: h.lastSeq, records };
    const loaded = h.forward === FORWARD.PACK ? null : await loadWindowRecords(ctx.replica.pool, journal.reader, window);
    await syncReplicas(ctx.replica, await applyWindow(ctx.replica, { path, forward: h.forward, sections: sectionPlacements(pack) }, loaded));
    // Its transaction id is the next one: windows are entered in order and none is queued yet.
    await recordApplied(index, { id: index.nextId, firstSeq: h.firstSeq, lastSeq: h.lastSeq, t1: h.t1, t2: h.t2, bytes: h.bytesWritten, records: [first] }, {
      sections: h.sections, writes: h.writes, changedBlocks: h.changedBlocks, fwdBytes: h.fwdBytes, bwdBytes: h.bwdBytes, packBytes: pack.bytes, headerCrc: pack.headerCrc,
    });
  }
  const applied = index.appliedSeq;
  const unapplied = tail.filter((r) => r.seq > applied);
  await bringProductionToJournal(ctx, tail, unapplied, stop);
  return unapplied;
}
