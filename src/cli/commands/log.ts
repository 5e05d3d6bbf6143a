// `rewind log`: the points a store still holds at window ends, one line each, with how finely each is
// held (writes, window, a consolidated minutely/hourly/daily point).
import type { Io } from '../io.js';
import { printReport } from '../report.js';
import { formatBytes } from '../../units.js';

export function logCommand(io: Io, store: string, opts: { json?: boolean }): Promise<number> {
  return printReport(io, store, opts, (reader) => reader.log(), (log) => {
    if (log.length === 0) return 'no transactions yet\n';
    const header = `${'tx'.padStart(6)}  ${'first seq'.padStart(10)}  ${'last seq'.padStart(10)}  ${'t1'.padEnd(24)}  ${'t2'.padEnd(24)}  ${'writes'.padStart(7)}  ${'written'.padStart(10)}  ${'forward'.padStart(10)}  ${'backward'.padStart(10)}  granularity\n`;
    const lines = log.map((e) => {
      // A pack of format 2 holds no forward encodings: the journal is the forward increment while it is kept.
      const forward = e.forwardBytes > 0 ? formatBytes(e.forwardBytes) : e.granularity === 'writes' ? 'journal' : '-';
      const held = e.windows > 1 ? `${e.granularity} (${e.windows} windows)` : e.granularity;
      return `${String(e.id).padStart(6)}  ${String(e.firstSeq).padStart(10)}  ${String(e.lastSeq).padStart(10)}  ${e.t1.padEnd(24)}  ${e.t2.padEnd(24)}  ${String(e.writes).padStart(7)}  ${formatBytes(e.bytesWritten).padStart(10)}  ${forward.padStart(10)}  ${formatBytes(e.backwardBytes).padStart(10)}  ${held}\n`;
    });
    return header + lines.join('');
  });
}
