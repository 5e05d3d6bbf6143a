// `rewind status`: latest write, applied point and volumes of a store.
import type { Io } from '../io.js';
import { printReport } from '../report.js';
import { formatBytes } from '../../units.js';

export function statusCommand(io: Io, store: string, opts: { json?: boolean }): Promise<number> {
  return printReport(io, store, opts, (reader) => reader.status(), (s) => {
    const rows: [string, string][] = [
      ['store', store],
      ['last write', s.lastSeq === 0 ? 'none yet' : `seq ${s.lastSeq} at ${s.lastTime}`],
      ['applied', `seq ${s.appliedSeq} (${s.transactions} transaction${s.transactions === 1 ? '' : 's'})`],
      ['volumes', s.volumes.map((v) => `${v.name} ${formatBytes(v.size)}`).join(', ')],
      ['block size', String(s.blockSize)],
      ['window', s.window],
      ['created', s.createdAt],
    ];
    return rows.map(([k, v]) => `${k.padEnd(11)} ${v}\n`).join('');
  });
}
