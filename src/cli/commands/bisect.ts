// `rewind bisect <store> --volume V [--from X | --from-time T] [--to Y | --to-time T] -- CMD ...`: finds the first write at which
// CMD, run against read-only views of the volume, fails (recovery-ops/bisect.ts). Opens the store as a
// reader (no lock), so it works while `rewind serve` runs. CMD's output and one line per probe go to
// stderr; the answer goes to stdout (--json: one document).
import type { Io } from '../io.js';
import { openStoreReader } from '../../store/reader.js';
import { bisect, type BisectResult } from '../../recovery-ops/bisect.js';
import { formatBytes, isoTime } from '../../units.js';
import { checkSeqOrder, parseEndpoint } from '../args.js';
import { EXIT } from '../exit-codes.js';

export interface BisectFlags {
  volume: string;
  from?: string;
  fromTime?: string;
  to?: string;
  toTime?: string;
  json?: boolean;
}

function asText(r: BisectResult): string {
  const time = r.time === null ? '' : ` at ${isoTime(r.time)}`;
  const tx = r.tx === null ? 'in a window not applied yet' : `transaction ${r.tx}`;
  const tail = `(last good: seq ${r.lastGood}; ${r.probes} probes over ${r.candidates} points)`;
  if (r.exact && r.write) {
    return `first bad write: seq ${r.seq}${time}, ${tx}, volume ${r.write.volume} offset ${r.write.offset} length ${r.write.length} (${formatBytes(r.write.length)}) ${tail}\n`;
  }
  if (r.write) {
    // The command is not deterministic, or judges more than this volume: the first failing point is
    // a write to another volume (only --to can be one).
    return `first bad point: seq ${r.seq}${time}, ${tx}, a write to volume ${r.write.volume} offset ${r.write.offset} length ${r.write.length}, not to ${r.volume}: the command's verdict changed without ${r.volume} changing ${tail}\n`;
  }
  return `first bad point: seq ${r.seq}${time}, ${tx} (a window end); its single writes after seq ${r.lastGood} are no longer held, so the bad write is one of them ${tail}\n`;
}

export async function bisectCommand(io: Io, store: string, cmd: string[], flags: BisectFlags): Promise<number> {
  const fromTarget = parseEndpoint(flags.from, flags.fromTime, 'from');
  const toTarget = parseEndpoint(flags.to, flags.toTime, 'to');
  checkSeqOrder(fromTarget, toTarget, true);
  const reader = await openStoreReader(store);
  try {
    // A time stands for the point after every write stamped at or before it, as for restore.
    const from = fromTarget === null ? undefined : reader.history.resolve(fromTarget);
    const to = toTarget === null ? undefined : reader.history.resolve(toTarget);
    const r = await bisect(reader.history, { volume: flags.volume, from, to, cmd, log: io.err });
    if (flags.json) {
      io.out(JSON.stringify({
        volume: r.volume, seq: r.seq, time: r.time === null ? null : isoTime(r.time), tx: r.tx,
        offset: r.write?.offset ?? null, length: r.write?.length ?? null, writeVolume: r.write?.volume ?? null,
        exact: r.exact, lastGood: r.lastGood, from: r.from, to: r.to, probes: r.probes, candidates: r.candidates,
      }) + '\n');
    } else {
      io.out(asText(r));
    }
    return EXIT.OK;
  } finally {
    reader.close();
  }
}
