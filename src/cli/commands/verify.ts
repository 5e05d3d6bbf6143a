import type { Io } from '../io.js';
import { readConfig } from '../../config.js';
import { JournalReader } from '../../journal/reader.js';
import { verifyStore } from '../../verify/verify.js';
import { formatBytes } from '../../units.js';
import { EXIT } from '../exit-codes.js';
import { joinPath } from '../../storage/storage.js';
import { nodeStorage } from '../../storage/node-storage.js';
import { TransactionIndex } from '../../transactions/transactions.js';
import { VolumeSet } from '../../volumes/volume-set.js';
import { liveWriter } from '../../lock.js';

export async function verifyCommand(io: Io, store: string, opts: { json?: boolean }): Promise<number> {
  // The pieces are opened one by one, not through a store reader, which needs a sound journal tail.
  const config = readConfig(nodeStorage, store);
  const volumes = new VolumeSet(nodeStorage, store, config, false);
  const journal = new JournalReader(nodeStorage, joinPath(store, 'journal'));
  let index: TransactionIndex | null = null;
  try {
    index = await TransactionIndex.open(nodeStorage, joinPath(store, 'index'), false);
    const report = verifyStore({ storage: nodeStorage, dir: store, blockSize: config.blockSize, volumes, index, journal, writerActive: liveWriter(store) !== null });
    if (opts.json) {
      io.out(JSON.stringify(report) + '\n');
    } else {
      const c = report.checked;
      io.out(`checked ${c.journalRecords} journal records (${formatBytes(c.journalBytes)}), ${c.packs} packs, ${c.transactions} transactions, ${c.replicaBlocks} replica blocks\n`);
      for (const n of report.notes) io.out(`note: ${n}\n`);
      for (const p of report.problems) io.out(`DAMAGE: ${p.file} at byte ${p.position}: ${p.message}\n`);
      io.out(report.ok ? 'ok\n' : `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} found\n`);
    }
    return report.ok ? EXIT.OK : EXIT.DAMAGE;
  } finally {
    index?.close();
    journal.closeFiles();
    volumes.close();
  }
}
