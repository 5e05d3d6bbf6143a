// Finding the first bad write (`rewind bisect`): a command that judges a volume (fsck, a database
// check, a grep) is run against read-only views of it at chosen points, and a binary search finds the
// first point at which it fails. The search runs over the points that can differ for this volume:
// every held single write to it between --from and --to (a write to another volume leaves its view
// as it was), and, where retention kept only window ends, those ends. So it takes about
// log2(writes to the volume) probes, plus the two that check the ends first: --from must be good and
// --to bad, or there is nothing to search and it says so.
//
// Where the journal still holds the writes the answer is exact: the write at the first bad point is
// the first bad write. Where only a window end is held the answer is that window: the bad write is
// one of its writes, which can no longer be told apart.
import { badArgument, corrupt } from '../errors.js';
import { heldAs, isHeld, oldestHeld } from '../lifecycle/held.js';
import type { History } from '../restore/history.js';
import { describeOutcome, runProbe, type ProbeOutcome } from './probe-command.js';
import { ViewServer } from './view-server.js';

export interface BisectOptions {
  volume: string;
  /** A good point (default: the oldest restorable one). */
  from?: number;
  /** A bad point (default: the newest write). */
  to?: number;
  /** The command and its arguments; `{}` is replaced by the view's URI. */
  cmd: readonly string[];
  /** Where the command's output and the progress lines go. */
  log: (text: string) => void;
}

export interface BisectResult {
  volume: string;
  from: number;
  to: number;
  /** The first point at which the command fails. */
  seq: number;
  /** The point before it that was found good. */
  lastGood: number;
  /** True when `seq` is a single write of the volume: the first bad write itself. */
  exact: boolean;
  /** The write at `seq` while the journal holds it (volume, offset, length, time); null otherwise. */
  write: { volume: string; offset: number; length: number; time: number } | null;
  /** Time of the point `seq` (the write's own, or its window end's); null if no longer known. */
  time: number | null;
  /** The transaction window holding `seq`; null while its window is not applied yet. */
  tx: number | null;
  /** Commands run. */
  probes: number;
  /** Points between `from` (excluded) and `to` (included) the search chose among. */
  candidates: number;
}

/**
 * The points the search runs over, ascending: `from`, every held point in between at which the
 * volume can have changed, and `to`.
 */
export function bisectPoints(history: History, volume: string, from: number, to: number): number[] {
  const v = history.volumes.byName(volume);
  const s = history.held.state();
  const points = new Set<number>();
  const stop = history.journal.scan({
    fromSeq: from + 1,
    onRecord: (r) => {
      if (r.seq >= to) return false;
      if (r.seq > from && r.volume === v.index && heldAs(s, r.seq) === 'write') points.add(r.seq);
    },
  });
  if (stop.kind === 'damaged') throw corrupt(stop.segment.path, stop.position, `${stop.reason} (needed to list the writes of "${volume}" between seq ${from} and ${to})`);
  // Windows whose single writes are gone: only their ends can be probed.
  for (const p of s.packs) if (p.lastSeq > from && p.lastSeq < to && s.journalFirstSeq > p.firstSeq) points.add(p.lastSeq);
  return [from, ...[...points].sort((a, b) => a - b), to];
}

/** The journal record of write `seq`, while the journal holds it. */
function writeAt(history: History, seq: number): BisectResult['write'] {
  let found: BisectResult['write'] = null;
  history.journal.scan({
    fromSeq: seq,
    onRecord: (r) => {
      if (r.seq === seq) found = { volume: history.volumes.byIndex(r.volume).name, offset: r.offset, length: r.length, time: r.time };
      return r.seq < seq;
    },
  });
  return found;
}

export async function bisect(history: History, opts: BisectOptions): Promise<BisectResult> {
  if (opts.cmd.length === 0) throw badArgument('give the command to run after --, e.g. rewind bisect STORE --volume V -- nbdsh -u {} -c "..."');
  const { volume } = opts;
  history.volumes.byName(volume);
  const s = history.held.state();
  const from = opts.from ?? oldestHeld(s);
  const to = opts.to ?? s.lastSeq;
  // Both ends must be points the store holds (the usual message names the held ones around them).
  for (const seq of [from, to]) if (!isHeld(s, seq)) history.resolve({ seq });
  if (from >= to) throw badArgument(`--from seq ${from} must come before --to seq ${to}`);
  const points = bisectPoints(history, volume, from, to);
  const server = await ViewServer.start(history, volume, from, (m) => opts.log(`${m}\n`));
  let probes = 0;
  const probe = async (seq: number, what: string): Promise<ProbeOutcome> => {
    // The point stays leased while the command reads it (each connection also leases its own view).
    const lease = history.restoreView(volume, seq);
    try {
      server.point = seq;
      probes++;
      const o = await runProbe(opts.cmd, server.uri, seq, opts.log);
      opts.log(`bisect: seq ${seq}${what}: ${o.good ? 'good' : 'bad'} (${describeOutcome(o)})\n`);
      return o;
    } finally {
      lease.close();
    }
  };
  try {
    const atFrom = await probe(from, ' (--from)');
    if (!atFrom.good) throw badArgument(`the command already fails at --from seq ${from} (${describeOutcome(atFrom)}): bisect needs --from at a point where it succeeds (--from defaults to the oldest restorable point)`);
    const atTo = await probe(to, ' (--to)');
    if (atTo.good) throw badArgument(`the command succeeds at --to seq ${to} (exit 0): nothing to find before it; give --to a point where it fails, or check the command`);
    // Good at points[lo], bad at points[hi].
    let lo = 0;
    let hi = points.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      const o = await probe(points[mid], `, ${hi - lo - 1} points left`);
      if (o.good) lo = mid;
      else hi = mid;
    }
    const seq = points[hi];
    const write = writeAt(history, seq);
    const exact = write !== null && write.volume === volume && heldAs(history.held.state(), seq) === 'write';
    return {
      volume, from, to, seq, lastGood: points[lo], exact,
      write,
      time: write?.time ?? history.held.pointTime(seq),
      tx: history.index.findBySeq(seq)?.id ?? null,
      probes,
      candidates: points.length - 1,
    };
  } finally {
    await server.close();
  }
}
