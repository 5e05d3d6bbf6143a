// The retention policy: which past points a store promises to hold, by age. A spec is a comma list of
// `granularity:age`, finest first, e.g. `writes:1h,windows:24h,hourly:7d,daily:30d`:
//   writes:A     every single write restorable for the newest A (the journal is kept)
//   windows:A    the end of every transaction window restorable up to A back
//   minutely:A, hourly:A, daily:A   one point per period (UTC) up to A back: the last window end in it
// Nothing older than the last term is kept. `all` keeps everything (bounded only by capacity).
//
// Why a plan made from this is safe to carry out: packs are contiguous in seq and each restores the
// point before its first write from the point after its last. Merging consecutive packs k..m gives a
// pack that restores the point before k from the point after m — exactly the points at the ends of the
// packs that remain. So the plan only ever merges packs inside one period of one tier (the end of the
// last of them is the period's point), and only ever drops a prefix of the packs (the points before
// the new oldest pack stay reachable, none after it are lost).
import { badArgument } from '../errors.js';
import { lowerBound } from '../sorted.js';

export type Granularity = 'writes' | 'windows' | 'minutely' | 'hourly' | 'daily';

/** Finest first; a spec names each at most once, in this order. */
export const GRANULARITIES: readonly Granularity[] = ['writes', 'windows', 'minutely', 'hourly', 'daily'];

/** Length of one period of a periodic granularity, in ms (UTC periods: they nest, minute in hour in day). */
export const PERIOD_MS: Readonly<Record<Granularity, number>> = { writes: 0, windows: 0, minutely: 60_000, hourly: 3_600_000, daily: 86_400_000 };

export interface RetentionTerm {
  granularity: Granularity;
  /** How far back this granularity is held, in ms. */
  ageMs: number;
}

/** An empty list of terms: everything is kept. */
export type RetentionPolicy = readonly RetentionTerm[];

/** Longest age a term may name (100 years: the bound keeps every figure below 2^53 ms). */
export const RETENTION_AGE_MS_MAX = 100 * 365 * 86_400_000;

const AGE_UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** "90s", "15m", "1h", "7d", "2w" (a bare number is seconds). Returns ms. */
export function parseAge(text: string, what = 'age'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])?\s*$/.exec(text);
  if (!m) throw badArgument(`${what}: "${text}" is not an age (examples: 90s, 15m, 1h, 7d, 2w)`);
  const ms = Math.round(Number(m[1]) * AGE_UNIT_MS[m[2] ?? 's']);
  if (!(ms > 0)) throw badArgument(`${what}: "${text}" must be longer than zero`);
  if (ms > RETENTION_AGE_MS_MAX) throw badArgument(`${what}: "${text}" is longer than the limit of 100 years`);
  return ms;
}

/** Parses a retention spec; `all` (or an empty spec) keeps everything. */
export function parseRetention(spec: string): RetentionPolicy {
  if (typeof spec !== 'string') throw badArgument('retention spec must be a string');
  const text = spec.trim();
  if (text === '' || text === 'all') return [];
  const terms: RetentionTerm[] = [];
  for (const raw of text.split(',')) {
    const term = raw.trim();
    const [kind, age, extra] = term.split(':');
    const granularity = kind as Granularity;
    if (!GRANULARITIES.includes(granularity)) {
      throw badArgument(`retention term "${term}": "${kind}" is not one of ${GRANULARITIES.join(', ')} (example: writes:1h,windows:24h,hourly:7d,daily:30d)`);
    }
    if (age === undefined || age === '' || extra !== undefined) throw badArgument(`retention term "${term}" needs one age, e.g. ${kind}:24h`);
    const ageMs = parseAge(age, `retention term "${term}"`);
    const prev = terms[terms.length - 1];
    if (prev && GRANULARITIES.indexOf(granularity) <= GRANULARITIES.indexOf(prev.granularity)) {
      throw badArgument(`retention spec "${text}": terms go finest first (${GRANULARITIES.join(' < ')}), each at most once; "${term}" comes after "${prev.granularity}"`);
    }
    if (prev && ageMs <= prev.ageMs) {
      throw badArgument(`retention spec "${text}": "${term}" must reach further back than "${prev.granularity}:${formatAge(prev.ageMs)}"`);
    }
    if (PERIOD_MS[granularity] > 0 && ageMs < PERIOD_MS[granularity]) {
      throw badArgument(`retention term "${term}" holds less than one ${granularity.replace(/ly$/, '').replace('dai', 'day')} period`);
    }
    terms.push({ granularity, ageMs });
  }
  return terms;
}

/** The spec of a policy in its shortest form (the inverse of parseRetention). */
export function formatRetention(policy: RetentionPolicy): string {
  return policy.length === 0 ? 'all' : policy.map((t) => `${t.granularity}:${formatAge(t.ageMs)}`).join(',');
}

export function formatAge(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    if (ms % AGE_UNIT_MS[unit] === 0) return `${ms / AGE_UNIT_MS[unit]}${unit}`;
  }
  return `${ms / 1000}s`;
}

/** The granularity a point of time `ageMs` old is held at, or null when the policy no longer holds it. */
export function granularityAt(policy: RetentionPolicy, ageMs: number): Granularity | null {
  if (policy.length === 0) return 'writes';
  for (const t of policy) if (ageMs <= t.ageMs) return t.granularity;
  return null;
}

/** The age at which points enter tier `g` (the age of the term before it; 0 for the first term). */
export function enteredAfterMs(policy: RetentionPolicy, g: Granularity): number {
  const i = policy.findIndex((t) => t.granularity === g);
  return i > 0 ? policy[i - 1].ageMs : 0;
}

/** The age up to which every single write is promised restorable (0: none; Infinity: keep everything). */
export function writesAgeMs(policy: RetentionPolicy): number {
  if (policy.length === 0) return Infinity;
  return policy[0].granularity === 'writes' ? policy[0].ageMs : 0;
}

/** The age of the oldest point the policy promises (Infinity: keep everything). */
export function horizonMs(policy: RetentionPolicy): number {
  return policy.length === 0 ? Infinity : policy[policy.length - 1].ageMs;
}

/** A pack as the plan sees it: a seq range and the time of its last write. */
export interface HeldPack {
  firstSeq: number;
  lastSeq: number;
  /** Time of the pack's last write (ms): the time of the point at its end. */
  t2: number;
}

/**
 * Packs as the plan sees them: each with the time of its last write, taken from the window (of
 * `windows`, in seq order) that ends where the pack ends. (A reader in another process may list a
 * pack its copy of the index does not reach yet, or no longer holds: then the nearest window's time.)
 */
export function heldPacks(packs: readonly { firstSeq: number; lastSeq: number }[], windows: readonly { lastSeq: number; t2: number }[]): HeldPack[] {
  return packs.map((p) => {
    const i = lowerBound(windows, (e) => e.lastSeq >= p.lastSeq);
    const w = windows[Math.min(i, windows.length - 1)];
    return { firstSeq: p.firstSeq, lastSeq: p.lastSeq, t2: w?.t2 ?? Infinity };
  });
}

export interface RetentionPlan {
  /** How many of the oldest packs the policy no longer holds (a prefix). */
  drop: number;
  /** Runs of consecutive packs (indices into the input, from..to inclusive, at least two) to merge into one. */
  merges: { from: number; to: number; granularity: Granularity }[];
  /**
   * Journal records from this seq on are still promised as single writes; older ones may retire once
   * nothing else needs them. Infinity when no window is in the `writes` tier.
   */
  journalFromSeq: number;
}

/**
 * What the policy says to do with the packs now: which to drop, which to merge, from where the journal
 * must be kept. Packs must be in seq order and contiguous (each starts right after the one before).
 */
export function planRetention(policy: RetentionPolicy, now: number, packs: readonly HeldPack[]): RetentionPlan {
  for (let i = 1; i < packs.length; i++) {
    if (packs[i].firstSeq !== packs[i - 1].lastSeq + 1) {
      throw badArgument(`packs ${packs[i - 1].firstSeq}-${packs[i - 1].lastSeq} and ${packs[i].firstSeq}-${packs[i].lastSeq} are not contiguous`);
    }
  }
  const tiers = packs.map((p) => granularityAt(policy, Math.max(0, now - p.t2)));
  let drop = 0;
  // Times never decrease along the packs, so the points no longer held are a prefix.
  while (drop < packs.length && tiers[drop] === null) drop++;
  const merges: RetentionPlan['merges'] = [];
  for (let i = drop; i < packs.length; ) {
    const g = tiers[i]!;
    const period = PERIOD_MS[g];
    let j = i;
    if (period > 0) {
      const bucket = Math.floor(packs[i].t2 / period);
      while (j + 1 < packs.length && tiers[j + 1] === g && Math.floor(packs[j + 1].t2 / period) === bucket) j++;
      // A period is merged once every window of it has entered this tier (none is still finer), so each
      // pack is rewritten once per tier, not once for every window that joins its period.
      if (j > i && (bucket + 1) * period + enteredAfterMs(policy, g) <= now) merges.push({ from: i, to: j, granularity: g });
    }
    i = j + 1;
  }
  let journalFromSeq = Infinity;
  for (let i = packs.length - 1; i >= drop && tiers[i] === 'writes'; i--) journalFromSeq = packs[i].firstSeq;
  return { drop, merges, journalFromSeq };
}
