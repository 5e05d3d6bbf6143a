// Parsing of command-line values into engine types, with errors that say what was expected.
import type { VolumeConfig } from '../config.js';
import { badArgument } from '../errors.js';
import type { Target } from '../restore/target.js';
import { parseSize, parseTime } from '../units.js';

/** `name:size` (a new volume in the store) or `name:path` (an existing file or device; the path has a '/'). */
export function parseVolumeSpec(spec: string): VolumeConfig {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) throw badArgument(`--volume "${spec}" must be <name>:<size> (e.g. disk0:1G) or <name>:<path> (e.g. db:/dev/vdb)`);
  const name = spec.slice(0, i);
  const rest = spec.slice(i + 1);
  if (rest.includes('/')) return { name, size: 0, path: rest };
  return { name, size: parseSize(rest, `--volume ${name} size`) };
}

export function parseWholeNumber(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim())) throw badArgument(`${what} "${text}" must be a whole number`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw badArgument(`${what} "${text}" is too large`);
  return n;
}

export function parseTarget(opts: { seq?: string; time?: string; tx?: string }): Target {
  const given = (['seq', 'time', 'tx'] as const).filter((k) => opts[k] !== undefined);
  if (given.length !== 1) throw badArgument(`give exactly one of --seq N, --time ISO or --tx ID${given.length ? ` (got ${given.map((g) => '--' + g).join(' and ')})` : ''}`);
  if (opts.seq !== undefined) return { seq: parseWholeNumber(opts.seq, '--seq') };
  if (opts.tx !== undefined) return { tx: parseWholeNumber(opts.tx, '--tx') };
  return { time: parseTime(opts.time!, '--time') };
}
