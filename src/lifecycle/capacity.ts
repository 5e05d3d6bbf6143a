// The capacity: how many bytes of history (journal + packs + index) a store may hold. Given as a size
// (`64G`) or as a share of the file system the store lives on (`80%`), resolved against its size.
import { badArgument } from '../errors.js';
import { parseSize } from '../units.js';

export type Capacity = { bytes: number } | { percent: number };

/** Smallest capacity accepted: history needs room for a few windows and journal segments. */
export const CAPACITY_BYTES_MIN = 16 * 2 ** 20;

/** "64G", "500M", "1T" (bytes, power-of-two units) or "80%" (of the file system); `none` for no bound. */
export function parseCapacity(text: string): Capacity | null {
  const t = text.trim();
  if (t === 'none' || t === '') return null;
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (pct) {
    const percent = Number(pct[1]);
    if (!(percent > 0 && percent <= 100)) throw badArgument(`capacity "${text}": a share of the file system must be above 0% and at most 100%`);
    return { percent };
  }
  const bytes = parseSize(t, 'capacity');
  if (bytes < CAPACITY_BYTES_MIN) throw badArgument(`capacity "${text}" is below the minimum of ${CAPACITY_BYTES_MIN / 2 ** 20} MiB`);
  return { bytes };
}

export function formatCapacity(c: Capacity | null): string {
  if (c === null) return 'none';
  return 'percent' in c ? `${c.percent}%` : String(c.bytes);
}

/** The bound in bytes, for a file system of `fsBytes` bytes (null: none). */
export function capacityBytes(c: Capacity | null, fsBytes: number): number | null {
  if (c === null) return null;
  if ('bytes' in c) return c.bytes;
  return Math.floor((fsBytes * c.percent) / 100);
}
