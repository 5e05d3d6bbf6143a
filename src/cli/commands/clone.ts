// `rewind clone create|list|delete`: writable clones of a past point. They take no lock, so they work
// while `rewind serve` runs on the store (which exports a new clone at once); delete is refused while
// serve has the clone open for a client.
import type { Command } from 'commander';
import { createClone, deleteClone, listClones, type CloneInfo } from '../../clones/clones.js';
import type { CloneRecord } from '../../clones/clone-record.js';
import { openStoreReader } from '../../store/reader.js';
import { describeTarget } from '../../restore/target.js';
import { formatBytes, parseSize } from '../../units.js';
import { parseTarget, requestedTarget } from '../args.js';
import { EXIT } from '../exit-codes.js';
import type { Io } from '../io.js';

export interface CloneCreateOptions {
  volume: string;
  seq?: string;
  time?: string;
  tx?: string;
  maxBytes?: string;
  nearest?: boolean;
  json?: boolean;
}

/** The record as printed: what a user or script needs, without the format fields. */
function shown(r: CloneRecord) {
  return { name: r.name, volume: r.volume, seq: r.seq, time: r.time, maxBytes: r.maxBytes, createdAt: r.createdAt };
}

export async function cloneCreateCommand(io: Io, store: string, name: string, opts: CloneCreateOptions): Promise<number> {
  const target = parseTarget(opts);
  const maxBytes = opts.maxBytes !== undefined ? parseSize(opts.maxBytes, '--max-bytes') : null;
  const reader = await openStoreReader(store);
  try {
    const history = reader.history;
    history.volumes.byName(opts.volume);
    // --nearest: a target retention retired stands for the nearest held point at or before it.
    const { seq, substituted } = history.resolvePoint(target, { nearest: opts.nearest === true });
    const r = await createClone({ dir: store, history }, name, opts.volume, substituted ? { seq } : target, { maxBytes });
    if (opts.json) io.out(JSON.stringify({ ...shown(r), requested: requestedTarget(opts), nearest: substituted }) + '\n');
    else {
      const at = substituted ? `seq ${r.seq}${r.time ? ` (${r.time})` : ''} — the nearest held point at or before ${describeTarget(target)}` : `${describeTarget(target)} (state after seq ${r.seq}${r.time ? `, ${r.time}` : ''})`;
      io.out(`created clone ${r.name} of ${r.volume} at ${at}` +
        `${r.maxBytes !== null ? `, writes up to ${formatBytes(r.maxBytes)}` : ''}; rewind serve exports it read-write as "${r.name}"\n`);
    }
    return EXIT.OK;
  } finally {
    reader.close();
  }
}

function asText(list: CloneInfo[]): string {
  if (list.length === 0) return 'no clones\n';
  const rows = list.map((c) => [c.name, c.volume, String(c.seq), c.time ?? '-', formatBytes(c.usedBytes), c.maxBytes === null ? '-' : formatBytes(c.maxBytes), c.openBy.length ? `pid ${c.openBy.join(', ')}` : '-']);
  const head = ['NAME', 'VOLUME', 'SEQ', 'TIME', 'USED', 'MAX', 'OPEN BY'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((x, i) => x.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

export async function cloneListCommand(io: Io, store: string, opts: { json?: boolean }): Promise<number> {
  const reader = await openStoreReader(store);
  try {
    const list = listClones({ dir: store, history: reader.history });
    io.out(opts.json ? JSON.stringify(list.map((c) => ({ ...shown(c), usedBytes: c.usedBytes, openBy: c.openBy }))) + '\n' : asText(list));
    return EXIT.OK;
  } finally {
    reader.close();
  }
}

export async function cloneDeleteCommand(io: Io, store: string, name: string, opts: { json?: boolean }): Promise<number> {
  const reader = await openStoreReader(store);
  try {
    const { leftovers } = await deleteClone({ dir: store, history: reader.history }, name);
    if (opts.json) io.out(JSON.stringify({ name, deleted: true, leftovers }) + '\n');
    else io.out(leftovers ? `removed the files an interrupted delete of clone ${name} left\n` : `deleted clone ${name}; the history it held is left to the retention policy\n`);
    return EXIT.OK;
  } finally {
    reader.close();
  }
}

type Run = (fn: (...a: any[]) => Promise<number>) => (...a: any[]) => Promise<void>;

/** Adds `rewind clone create|list|delete` to the program. */
export function addCloneCommands(program: Command, run: Run, io: Io): void {
  const clone = program
    .command('clone')
    .description('writable clones of a past point: exported read-write by `rewind serve` under their name; their writes never reach the volume or its history');
  clone
    .command('create')
    .description('create a clone of a volume at a past point (copies nothing); retention keeps that point until the clone is deleted')
    .argument('<store>', 'store directory')
    .argument('<name>', "the clone's name (its NBD export name): letters, digits, '.', '_', '-'")
    .requiredOption('--volume <name>', 'volume to clone')
    .option('--seq <N>', 'state exactly after write N (0: before the first write)')
    .option('--time <ISO>', 'state after every write stamped at or before this ISO 8601 time')
    .option('--tx <ID>', 'state at the end of transaction window ID')
    .option('--max-bytes <size>', "bound on the bytes the clone's writes take (whole blocks; K/M/G/T suffixes); past it a write gets ENOSPC")
    .option('--nearest', 'when the target is no longer held (retention retired it), clone the nearest held point at or before it')
    .option('--json', 'print the clone as JSON: name, volume, seq, time, maxBytes, createdAt, requested, nearest')
    .action(run((store, name, opts) => cloneCreateCommand(io, store, name, opts)));
  clone
    .command('list')
    .description('list the clones: name, volume, point, bytes written, limit, the process that has it open')
    .argument('<store>', 'store directory')
    .option('--json', 'an array of {name, volume, seq, time, maxBytes, createdAt, usedBytes, openBy}')
    .action(run((store, opts) => cloneListCommand(io, store, opts)));
  clone
    .command('delete')
    .description('delete a clone and its writes (refused while rewind serve has it open for a client)')
    .argument('<store>', 'store directory')
    .argument('<name>', 'the clone')
    .option('--json', 'print {name, deleted, leftovers}')
    .action(run((store, name, opts) => cloneDeleteCommand(io, store, name, opts)));
}
