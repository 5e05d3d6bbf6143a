// Parsing of user-facing quantities: sizes with K/M/G/T suffixes, durations, ISO 8601 times.
import { badArgument } from './errors.js';

const SIZE_SUFFIX: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** "4096", "64K", "1M", "1G", "1.5G" (power-of-two units; an optional trailing "iB"/"B" is accepted). */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!m) throw badArgument(`${what}: "${text}" is not a size (examples: 4096, 64K, 1M, 1G)`);
  const value = Number(m[1]) * SIZE_SUFFIX[m[2].toUpperCase()];
  if (!Number.isSafeInteger(value)) throw badArgument(`${what}: "${text}" is not a whole number of bytes`);
  return value;
}

const DURATION_UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "250ms", "1s", "5m", "1h"; a bare number is seconds. Returns milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw badArgument(`${what}: "${text}" is not a duration (examples: 250ms, 1s, 5m)`);
  const ms = Number(m[1]) * DURATION_UNIT[m[2] ?? 's'];
  if (!(ms > 0)) throw badArgument(`${what}: "${text}" must be longer than zero`);
  return ms;
}

/** A strict ISO 8601 date-time ("2026-11-25T12:00:00Z", "2026-11-25T12:00:00.123+01:00"). Returns ms since the epoch. */
export function parseTime(text: string, what = 'time'): number {
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
  if (!iso.test(text.trim())) throw badArgument(`${what}: "${text}" is not an ISO 8601 time (example: 2026-11-25T12:00:00Z)`);
  const ms = Date.parse(text.trim());
  if (!Number.isFinite(ms)) throw badArgument(`${what}: "${text}" is not a valid time`);
  return ms;
}

export const isoTime = (ms: number): string => new Date(ms).toISOString();

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

/** A duration for people: "45s", "12m 5s", "3h 20m", "2d 4h". */
export function formatSeconds(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${Math.max(0, s)}s`;
  const parts: [number, string][] = [[Math.floor(s / 86_400), 'd'], [Math.floor(s / 3600) % 24, 'h'], [Math.floor(s / 60) % 60, 'm'], [s % 60, 's']];
  const first = parts.findIndex(([n]) => n > 0);
  return parts.slice(first, first + 2).filter(([n]) => n > 0).map(([n, u]) => `${n}${u}`).join(' ');
}
