// Parsing of command-line values into engine types (volumes, targets, listen addresses, TLS settings),
// with errors that say what was expected.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { VolumeConfig } from '../config.js';
import { badArgument } from '../errors.js';
import type { NbdTlsOptions } from '../nbd/server.js';
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

/** The target as the user typed it, for --json `requested`: `seq 12`, `time 2026-11-25T12:00:00Z`, `tx 3`. */
export function requestedTarget(opts: { seq?: string; time?: string; tx?: string }): string {
  return opts.seq !== undefined ? `seq ${opts.seq}` : opts.tx !== undefined ? `tx ${opts.tx}` : `time ${opts.time}`;
}

/**
 * One end of a range given as `--<name> N` (a seq) or `--<name>-time ISO` (diff, bisect): at most one
 * of the two; null when neither is given.
 */
export function parseEndpoint(seq: string | undefined, time: string | undefined, name: 'from' | 'to'): Target | null {
  if (seq !== undefined && time !== undefined) throw badArgument(`give --${name} N or --${name}-time ISO, not both`);
  if (seq !== undefined) return { seq: parseWholeNumber(seq, `--${name}`) };
  if (time !== undefined) return { time: parseTime(time, `--${name}-time`) };
  return null;
}

/** `--from N --to M` with both seqs: the start must not come after the end (checked before the store is opened). */
export function checkSeqOrder(from: Target | null, to: Target | null, strict: boolean): void {
  if (from === null || to === null || !('seq' in from) || !('seq' in to)) return;
  const [a, b] = [from.seq, to.seq];
  if (strict ? a >= b : a > b) {
    throw badArgument(strict ? `--from seq ${a} must come before --to seq ${b}` : `--from seq ${a} is after --to seq ${b}: give the earlier point as --from`);
  }
}

/** `HOST:PORT`, or `[IPv6]:PORT`. */
export function parseListen(text: string, flag = '--listen', example = '127.0.0.1:10809'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text.trim());
  if (!m) throw badArgument(`${flag} "${text}" must be HOST:PORT (e.g. ${example})`);
  const port = Number(m[3]);
  if (port > 65535) throw badArgument(`${flag} port ${port} is not a TCP port`);
  return { host: m[1] ?? m[2], port };
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and "localhost". */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  if (net.isIPv6(h)) return /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(h) || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** The TLS flags of `rewind serve`. */
export interface TlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsVerifyClient?: boolean;
}

function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw badArgument(`${flag} ${file}: cannot read it (${(err as Error).message})`);
  }
}

/**
 * The TLS settings from --tls-cert/--tls-key/--tls-ca/--tls-verify-client (null: no TLS), checked
 * before anything is opened: files readable, PEM valid, key matching the certificate.
 */
export function tlsFromOptions(opts: TlsFlags): NbdTlsOptions | null {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw badArgument('--tls-cert and --tls-key go together: give both (PEM files) or neither');
  if (opts.tlsCert === undefined) {
    if (opts.tlsCa !== undefined || opts.tlsVerifyClient) throw badArgument('--tls-ca and --tls-verify-client need --tls-cert and --tls-key');
    return null;
  }
  if (opts.tlsVerifyClient && opts.tlsCa === undefined) throw badArgument('--tls-verify-client needs --tls-ca FILE: the CA that client certificates must be signed by');
  const t: NbdTlsOptions = {
    cert: readPem(opts.tlsCert, '--tls-cert'),
    key: readPem(opts.tlsKey!, '--tls-key'),
    ca: opts.tlsCa !== undefined ? readPem(opts.tlsCa, '--tls-ca') : undefined,
    requireClientCert: opts.tlsVerifyClient === true,
    required: true,
  };
  try {
    tls.createSecureContext({ cert: t.cert, key: t.key, ca: t.ca });
  } catch (err) {
    throw badArgument(`--tls-cert/--tls-key/--tls-ca: not a usable PEM certificate, key and CA (${(err as Error).message})`);
  }
  return t;
}
