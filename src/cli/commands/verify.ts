import type { Io } from '../io.js';
import { openStoreReader } from '../../store/reader.js';
import { verifyStore } from '../../verify/verify.js';
import { formatBytes } from '../../units.js';
import { EXIT } from '../exit-codes.js';
import { joinPath } from '../../storage/storage.js';
import { nodeStorage } from '../../storage/node-storage.js';
import { TransactionIndex } from '../../transactions/transactions.js';
import { liveWriter } from '../../lock.js';

export async function verifyCommand(io: Io, store: string, opts: { json?: boolean }): Promise<number> {
  const reader = await openStoreReader(store, { tolerateDamage: true });
  try {
    const h = reader.history;
    const index = await TransactionIndex.open(nodeStorage, joinPath(store, 'index'), false);
    const report = verifyStore({ storage: nodeStorage, dir: store, blockSize: h.config.blockSize, volumes: h.volumes, index, journal: h.journal, writerActive: liveWriter(store) !== null });
    index.close();
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
    reader.close();
  }
}
