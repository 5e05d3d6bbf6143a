// `rewind diff`: the extents of a volume written between two held points, merged and in order, from
// the packs' block lists and the journal (restore/diff.ts). Block-granular: whole blocks of the
// store's block size.
import type { Io } from '../io.js';
import { openStoreReader } from '../../store/reader.js';
import { badArgument } from '../../errors.js';
import { extentBytes } from '../../restore/diff.js';
import { formatBytes, isoTime } from '../../units.js';
import { checkSeqOrder, parseEndpoint } from '../args.js';
import { EXIT } from '../exit-codes.js';

export interface DiffOptions {
  volume: string;
  from?: string;
  fromTime?: string;
  to?: string;
  toTime?: string;
  json?: boolean;
}

export async function diffCommand(io: Io, store: string, opts: DiffOptions): Promise<number> {
  const from = parseEndpoint(opts.from, opts.fromTime, 'from');
  if (from === null) throw badArgument('give the start point: --from N (a seq; 0 is before the first write) or --from-time ISO');
  const toArg = parseEndpoint(opts.to, opts.toTime, 'to');
  checkSeqOrder(from, toArg, false);
  const reader = await openStoreReader(store);
  try {
    const h = reader.history;
    h.volumes.byName(opts.volume);
    const to = toArg ?? { seq: reader.status().lastSeq };
    const r = h.diff(opts.volume, from, to);
    if (opts.json) {
      io.out(JSON.stringify({ extents: r.extents, volume: opts.volume, fromSeq: r.fromSeq, toSeq: r.toSeq, blockSize: h.config.blockSize, bytes: extentBytes(r.extents) }) + '\n');
      return EXIT.OK;
    }
    const describe = (seq: number) => {
      const t = h.held.pointTime(seq);
      return t === null ? `seq ${seq}` : `seq ${seq} (${isoTime(t)})`;
    };
    const lines = r.extents.map((e) => `${String(e.offset).padStart(16)}  ${String(e.length).padStart(12)}\n`);
    io.out(`${'offset'.padStart(16)}  ${'length'.padStart(12)}\n${lines.join('')}`);
    io.out(`${opts.volume}: ${r.extents.length} extent${r.extents.length === 1 ? '' : 's'}, ${formatBytes(extentBytes(r.extents))} in blocks of ${h.config.blockSize} written after ${describe(r.fromSeq)} up to ${describe(r.toSeq)}\n`);
    return EXIT.OK;
  } finally {
    reader.close();
  }
}
