// Verify's reading of the journal: every record from the first segment on (retirement may have
// removed the oldest, so it can start after seq 1), header and payload checksums, and what the index
// needs of it: the recorded journal position of each window whose first record is still there, and
// every record from the last applied window's first write on (recovery starts there).
import type { JournalReader, ScanStop } from '../journal/reader.js';
import { entryPosition, type TxEntry } from '../transactions/transactions.js';
import type { Findings } from './report.js';

/** Scans tried at most when a running writer retires a segment under the scan. */
const SCAN_ATTEMPTS_MAX = 3;

export interface JournalScan {
  /** First seq of the first segment (Infinity when there is none). */
  firstSeq: number;
  /** The newest record read (0: none). */
  lastSeq: number;
  stop: ScanStop;
  /** Where the first record of each wanted window lies. */
  firstRecord: Map<number, { segment: number; position: number }>;
}

export interface JournalCheckContext {
  journal: JournalReader;
  writerActive: boolean;
  progress?: (phase: string, done: number, total: number) => void;
}

/** Reads the whole journal; null (with the damage recorded) when it cannot be read to its end. */
export function scanJournal(ctx: JournalCheckContext, wanted: ReadonlySet<number>, found: Findings): JournalScan | null {
  for (let attempt = 1; ; attempt++) {
    const firstRecord = new Map<number, { segment: number; position: number }>();
    let records = 0;
    let bytes = 0;
    let lastSeq = 0;
    // The segment the scan began with: that of its first record (a listing of our own could be older or newer).
    let firstSegment: number | null = null;
    try {
      const stop = ctx.journal.scan({
        fromSeq: 1,
        verifyPayload: true,
        onRecord: (r) => {
          records++;
          bytes += r.length;
          lastSeq = r.seq;
          firstSegment ??= r.segment;
          if (wanted.has(r.seq)) firstRecord.set(r.seq, { segment: r.segment, position: r.position });
          if (records % 4096 === 0) ctx.progress?.('journal', r.segment, ctx.journal.segments().length);
        },
      });
      found.checked.journalRecords += records;
      found.checked.journalBytes += bytes;
      // No record: the scan's own listing (cached by the reader) says where the journal starts, if anywhere.
      const firstSeq = firstSegment ?? ctx.journal.segments()[0]?.firstSeq ?? Infinity;
      return { firstSeq, lastSeq, stop, firstRecord };
    } catch (err) {
      // A segment listed at the start is gone: a running writer retired it; scan again from the new first one.
      if (ctx.writerActive && attempt < SCAN_ATTEMPTS_MAX) continue;
      found.fail(err, ctx.journal.dir);
      return null;
    }
  }
}

/**
 * Checks the scan against the index: damage and torn tails, each window's recorded journal position
 * (when its first record is still in the journal), and that the journal holds the last applied
 * window and everything after it. `entries` were read before the scan, so their records were durable
 * before it; `lastApplied` is the index's newest entry read after the scan (with a writer running it
 * may be newer: the writer retires segments only up to the window it last applied).
 */
export function checkJournal(scan: JournalScan, entries: readonly TxEntry[], lastApplied: TxEntry | undefined, indexPath: string, journalDir: string, found: Findings): void {
  const { stop } = scan;
  if (stop.kind === 'damaged') found.damage(stop.segment.path, stop.position, stop.reason);
  if (stop.kind === 'torn') found.note(`journal ends with an incomplete record at ${stop.segment.path} byte ${stop.position} (a write in progress, or cut off by a crash; the writer removes it on open)`);
  // Past damage the records are unknown: nothing more can be said of them.
  if (stop.kind === 'damaged') return;
  for (const e of entries) {
    if (e.firstSeq < scan.firstSeq) continue; // retired with its segment
    const jr = scan.firstRecord.get(e.firstSeq);
    if (!jr || jr.segment !== e.journal.segment || jr.position !== e.journal.position) {
      found.damage(indexPath, entryPosition(entries, e), `transaction ${e.id}: journal position of seq ${e.firstSeq} is wrong`);
    }
  }
  // Recovery replays from the last applied window's first record (from seq 1 before any window).
  const needFrom = lastApplied?.firstSeq ?? 1;
  const end = entries[entries.length - 1];
  if (scan.firstSeq === Infinity) {
    if (lastApplied) found.damage(journalDir, 0, `the journal is empty, but recovery needs it from seq ${needFrom} (the first write of transaction ${lastApplied.id}, the last applied)`);
    return;
  }
  if (scan.firstSeq > needFrom) {
    const which = lastApplied ? `the first write of transaction ${lastApplied.id}, the last applied, which recovery starts from` : 'no window is applied yet';
    found.damage(journalDir, 0, `the journal starts at seq ${scan.firstSeq}, after seq ${needFrom} (${which})`);
  } else if (end && scan.lastSeq < end.lastSeq) {
    found.damage(journalDir, 0, `the journal ends at seq ${scan.lastSeq}, before seq ${end.lastSeq} (the end of transaction ${end.id}, an applied window)`);
  }
}
