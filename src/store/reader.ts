// Opening a store read-only, alongside a writer in another process (`rewind serve`): nothing is
// locked, recovered or truncated; the reader sees every write acknowledged before it opened.
import { listRecords } from '../clones/clone-record.js';
import { readConfig } from '../config.js';
import { systemClock, type Clock } from '../clock.js';
import { corrupt } from '../errors.js';
import { JournalReader } from '../journal/reader.js';
import { HistoryFootprint } from '../lifecycle/footprint.js';
import { lifecyclePolicy } from '../lifecycle/policy.js';
import { LeaseFiles } from '../lifecycle/leases.js';
import { DirectoryCatalog } from '../restore/catalog.js';
import { History } from '../restore/history.js';
import { nodeStorage } from '../storage/node-storage.js';
import { joinPath, type Storage } from '../storage/storage.js';
import { TransactionIndex } from '../transactions/transactions.js';
import { VolumeSet } from '../volumes/volume-set.js';
import { historyLog, type LogEntry } from './log.js';
import { statusReport, type StatusReport } from './status.js';
import { ScannedTail } from './unapplied.js';

export interface StoreReader {
  readonly history: History;
  readonly dir: string;
  /** The newest write, the applied point (as of now: the index is read again), volumes, configuration and protection. */
  status(): StatusReport;
  /** The retained points, oldest first: one per window end held, or per consolidated point (store/log.ts). */
  log(): LogEntry[];
  close(): void;
}

/** Times a reader reads the index again when the writer retired the journal segment it pointed at. */
const READER_OPEN_ATTEMPTS = 5;

export async function openStoreReader(dir: string, opts: { storage?: Storage; clock?: Clock; /** open even when the index or journal is damaged (for verify) */ tolerateDamage?: boolean } = {}): Promise<StoreReader> {
  const storage = opts.storage ?? nodeStorage;
  const clock = opts.clock ?? systemClock;
  const config = readConfig(storage, dir);
  const volumes = new VolumeSet(storage, dir, config, false);
  const index = await TransactionIndex.open(storage, joinPath(dir, 'index'), false);
  if (index.damage && !opts.tolerateDamage) throw corrupt(index.path, index.damage.position, `${index.damage.reason}; run \`rewind verify\``);
  const journal = new JournalReader(storage, joinPath(dir, 'journal'));
  // The newest write, and the writes not applied yet: walk the journal from the last applied window to
  // its end. A running writer may retire the segment that window starts in once it applies newer
  // ones: then the index is read again and the walk starts from the newer window.
  let lastSeq = 0;
  let lastTime = 0;
  let unapplied = new ScannedTail();
  let stop: ReturnType<JournalReader['scan']>;
  for (let attempt = 0; ; attempt++) {
    lastSeq = index.appliedSeq;
    lastTime = index.last?.t2 ?? 0;
    unapplied = new ScannedTail();
    const start = index.last?.journal;
    if (start && attempt < READER_OPEN_ATTEMPTS && !journal.segments(true).some((x) => x.firstSeq === start.segment)) {
      index.refresh();
      continue;
    }
    stop = journal.scan({
      fromSeq: index.appliedSeq + 1,
      start,
      onRecord: (r) => {
        lastSeq = r.seq;
        lastTime = r.time;
        unapplied.add(r);
      },
    });
    break;
  }
  if (stop.kind === 'damaged' && !opts.tolerateDamage) throw corrupt(stop.segment.path, stop.position, `${stop.reason}; run \`rewind verify\``);
  const catalog = new DirectoryCatalog(storage, joinPath(dir, 'increments'), new LeaseFiles(storage, dir));
  const state = {
    lastSeq: () => lastSeq,
    lastTime: () => lastTime,
    appliedSeq: () => {
      index.refresh();
      return Math.min(index.appliedSeq, lastSeq);
    },
    now: () => clock.now(),
  };
  const history = new History(storage, config, volumes, index, journal, catalog, state);
  const footprint = new HistoryFootprint(storage, dir);
  return {
    history,
    dir,
    status: () => statusReport({ config: () => config, volumes, index, state, catalog, footprint, unapplied, journalFirstSeq: () => history.held.journalFirstSeq(), clones: () => listRecords(storage, dir) }),
    log: () => {
      state.appliedSeq(); // reads the index again before the packs are listed (a pack is on disk before its entry)
      return historyLog(history, lifecyclePolicy(config).retain, clock.now());
    },
    close() {
      journal.closeFiles();
      index.close();
      volumes.close();
    },
  };
}
