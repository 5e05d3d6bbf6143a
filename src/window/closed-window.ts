// A closed transaction window: what the scheduler decided (its seqs, times and bytes) with the
// transaction id and journal records the store gave it. The increment builder turns one into a pack.
import type { RecordRef } from '../journal/reader.js';

export interface ClosedWindow {
  /** Its transaction id (consecutive from 1). */
  id: number;
  firstSeq: number;
  lastSeq: number;
  /** Time of the first and of the last write. */
  t1: number;
  t2: number;
  bytes: number;
  /** Its writes, in seq order (firstSeq..lastSeq). */
  records: RecordRef[];
}
