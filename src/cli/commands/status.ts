// `rewind status`: latest write, applied point, volumes and protection of a store.
import type { Io } from '../io.js';
import { printReport } from '../report.js';
import type { StatusReport } from '../../store/status.js';
import { readerTierBacklog } from '../../tier/backlog.js';
import { formatBytes, formatSeconds } from '../../units.js';

export function statusCommand(io: Io, store: string, opts: { json?: boolean }): Promise<number> {
  return printReport(io, store, opts, (reader) => {
    const tier = readerTierBacklog(reader);
    return tier ? { ...reader.status(), tier } : reader.status();
  }, (s: StatusReport & { tier?: ReturnType<typeof readerTierBacklog> }) => {
    const rows: [string, string][] = [
      ['store', store],
      ['last write', s.lastSeq === 0 ? 'none yet' : `seq ${s.lastSeq} at ${s.lastTime}`],
      ['applied', `seq ${s.appliedSeq} (${s.transactions} transaction${s.transactions === 1 ? '' : 's'})`],
      ['replica lag', s.replicaLag.writes === 0 ? 'none' : `${s.replicaLag.writes} write${s.replicaLag.writes === 1 ? '' : 's'}, ${formatBytes(s.replicaLag.bytes)}, oldest ${formatSeconds(s.replicaLag.seconds)} ago`],
      ['volumes', s.volumes.map((v) => `${v.name} ${formatBytes(v.size)}`).join(', ')],
      ['block size', String(s.blockSize)],
      ['window', s.window],
      ['created', s.createdAt],
      ['retention', s.retention],
      ['history', `${formatBytes(s.historyBytes)}${s.capacityBytes === null ? ' (no capacity set)' : ` of ${formatBytes(s.capacityBytes)} capacity (${((100 * s.historyBytes) / s.capacityBytes).toFixed(1)}%)`}`],
      ['oldest', `seq ${s.oldestRestorable.seq} at ${s.oldestRestorable.time}`],
      ['protection', protectionText(s.protection)],
      ['backlog', `${formatBytes(s.consolidationBacklogBytes)} to consolidate`],
    ];
    if (s.clones.length > 0) rows.push(['clones', s.clones.map((c) => `${c.name} (${c.volume} at seq ${c.seq}${c.heldPastPolicy ? ', keeps history past the retention policy' : ''})`).join(', ')]);
    if (s.tier) rows.push(['tier', `${s.tier.location}: ${s.tier.bytes === 0 ? 'everything shipped' : `${formatBytes(s.tier.bytes)} not shipped yet, oldest seq ${s.tier.oldestUnshippedSeq}`}`]);
    return rows.map(([k, v]) => `${k.padEnd(11)} ${v}\n`).join('');
  });
}

function protectionText(p: StatusReport['protection']): string {
  const required = p.requiredSeconds === null ? 'everything kept' : `${formatSeconds(p.requiredSeconds)} required`;
  const predicted = p.predictedSeconds === null ? '' : `, capacity lasts ${formatSeconds(p.predictedSeconds)} at the recent write rate`;
  return `${formatSeconds(p.achievedSeconds)} achieved (${required})${predicted}`;
}
