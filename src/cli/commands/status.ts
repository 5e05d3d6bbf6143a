import type { Io } from '../main.js';
import { openStoreReader } from '../../store/reader.js';
import { formatBytes } from '../../units.js';
import { EXIT } from '../exit-codes.js';

export async function statusCommand(io: Io, store: string, opts: { json?: boolean }): Promise<number> {
  const reader = await openStoreReader(store);
  try {
    const s = reader.status();
    if (opts.json) {
      io.out(JSON.stringify(s) + '\n');
      return EXIT.OK;
    }
    const rows: [string, string][] = [
      ['store', store],
      ['last write', s.lastSeq === 0 ? 'none yet' : `seq ${s.lastSeq} at ${s.lastTime}`],
      ['applied', `seq ${s.appliedSeq} (${s.transactions} transaction${s.transactions === 1 ? '' : 's'})`],
      ['volumes', s.volumes.map((v) => `${v.name} ${formatBytes(v.size)}`).join(', ')],
      ['block size', String(s.blockSize)],
      ['window', s.window],
      ['created', s.createdAt],
    ];
    for (const [k, v] of rows) io.out(`${k.padEnd(11)} ${v}\n`);
    return EXIT.OK;
  } finally {
    reader.close();
  }
}
