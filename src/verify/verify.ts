// verify: reads every checksummed byte of a store and checks the pieces against each other:
// every journal record (header and payload), every pack of the chain (header, sections, encodings),
// every transaction index entry against its pack (or the merged pack covering it) and journal
// position, and the replica against the newest forward increment of every block it holds. Damage
// is reported with file and position.
//
// History the lifecycle retired is not damage: windows before the oldest pack (dropped by
// retention), journal segments before the last applied window (retired), packs a merged pack covers
// (left by an interrupted consolidation). What recovery needs is checked still: the packs from the
// oldest one up to the applied point, and the journal from the last applied window on.
import { listPacks, type PackFileName } from '../increment/pack.js';
import type { JournalReader } from '../journal/reader.js';
import { joinPath, type Storage } from '../storage/storage.js';
import type { TransactionIndex, TxEntry } from '../transactions/transactions.js';
import type { VolumeSet } from '../volumes/volume-set.js';
import { checkJournal, scanJournal } from './journal-check.js';
import { checkPacks, type PackCheck } from './pack-check.js';
import { checkReplica } from './replica-check.js';
import { Findings, type VerifyReport } from './report.js';

export type { Problem, VerifyReport } from './report.js';

/** Listings of the packs tried at most when a running writer consolidates or drops a pack under verify. */
const PACK_ATTEMPTS_MAX = 3;

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
  const found = new Findings();
  const writerActive = ctx.writerActive ?? false;
  const incDir = joinPath(ctx.dir, 'increments');

  // 1. The packs as they are now, then the index: a running writer renames a pack into place
  // before it indexes it, so every entry read after the listing either has its pack listed (or a
  // merged pack covering it) or was applied after the listing (and is left for the next verify).
  let listing = listPacksNow(ctx, incDir);
  const entries = listing.entries;
  if (ctx.index.damage) found.damage(ctx.index.path, ctx.index.damage.position, ctx.index.damage.reason);
  const tail = ctx.index.pendingTail;
  if (tail && writerActive) found.note(`the last index entry (byte ${tail.position}) is being written by the running writer`);
  else if (tail) found.damage(ctx.index.path, tail.position, `${tail.reason} (last entry; the next writer to open the store drops it and redoes its window from the pack)`);
  found.checked.transactions = entries.length;

  // 2. The journal, every record and payload, and what the index needs of it.
  const scan = scanJournal({ journal: ctx.journal, writerActive, progress: ctx.progress }, new Set(entries.map((e) => e.firstSeq)), found);
  if (scan) {
    // A running writer retires segments up to the window it applied last: look at the index again.
    if (writerActive) ctx.index.refresh();
    const lastApplied = writerActive ? ctx.index.last : entries[entries.length - 1];
    checkJournal(scan, entries, lastApplied, ctx.index.path, ctx.journal.dir, found);
  }

  // 3. The packs against the index. A pack the running writer consolidated or dropped since the
  // listing is gone: list again (the entries too, as a merged pack may reach past the first listing).
  let checked: PackCheck;
  let packFindings: Findings;
  for (let attempt = 1; ; attempt++) {
    packFindings = new Findings();
    checked = checkPacks({ storage: ctx.storage, dir: incDir, indexPath: ctx.index.path, writerActive, progress: ctx.progress }, listing.files, listing.entries, packFindings);
    if (!checked.vanished || attempt === PACK_ATTEMPTS_MAX) break;
    listing = listPacksNow(ctx, incDir);
  }
  found.problems.push(...packFindings.problems);
  found.notes.push(...packFindings.notes);
  found.checked.packs = packFindings.checked.packs;
  if (checked.vanished) {
    found.note(`packs kept changing while verify read them (${checked.vanished} was consolidated or dropped by the running writer); the packs after it and the replica were not checked: run verify again`);
    return found.report();
  }

  // 4. The replica: each block equals the newest forward increment that wrote it.
  checkReplica({ storage: ctx.storage, dir: incDir, blockSize: ctx.blockSize, volumes: ctx.volumes, writerActive, listedLast: listing.listedLast }, checked.packs, found);
  return found.report();
}

interface Listing {
  files: PackFileName[];
  /** The newest seq a listed pack reaches. */
  listedLast: number;
  /** The index entries the listing can answer for. */
  entries: readonly TxEntry[];
}

function listPacksNow(ctx: VerifyContext, incDir: string): Listing {
  const files = listPacks(ctx.storage, incDir);
  const listedLast = files.reduce((m, f) => Math.max(m, f.lastSeq), 0);
  ctx.index.refresh();
  const entries = ctx.writerActive ? ctx.index.entries.filter((e) => e.lastSeq <= listedLast) : ctx.index.entries;
  return { files, listedLast, entries };
}
