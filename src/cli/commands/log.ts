import type { Io } from '../main.js';
import { openStoreReader } from '../../store/reader.js';
import { formatBytes } from '../../units.js';
import { EXIT } from '../exit-codes.js';

export async function logCommand(io: Io, store: string, opts: { json?: boolean }): Promise<number> {
  const reader = await openStoreReader(store);
  try {
    const log = reader.log();
    if (opts.json) {
      io.out(JSON.stringify(log) + '\n');
      return EXIT.OK;
    }
    if (log.length === 0) {
      io.out('no transactions yet\n');
      return EXIT.OK;
    }
    io.out(`${'tx'.padStart(6)}  ${'first seq'.padStart(10)}  ${'last seq'.padStart(10)}  ${'t1'.padEnd(24)}  ${'t2'.padEnd(24)}  ${'writes'.padStart(7)}  ${'written'.padStart(10)}  ${'forward'.padStart(10)}  ${'backward'.padStart(10)}\n`);
    for (const e of log) {
      io.out(`${String(e.id).padStart(6)}  ${String(e.firstSeq).padStart(10)}  ${String(e.lastSeq).padStart(10)}  ${e.t1.padEnd(24)}  ${e.t2.padEnd(24)}  ${String(e.writes).padStart(7)}  ${formatBytes(e.bytesWritten).padStart(10)}  ${formatBytes(e.forwardBytes).padStart(10)}  ${formatBytes(e.backwardBytes).padStart(10)}\n`);
    }
    return EXIT.OK;
  } finally {
    reader.close();
  }
}
