// The retention policy promises points by age; a plan carried out (prefix dropped, runs merged) must
// keep every promised point and never merge across a period or a tier.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  enteredAfterMs,
  formatRetention,
  granularityAt,
  horizonMs,
  parseAge,
  parseRetention,
  PERIOD_MS,
  planRetention,
  writesAgeMs,
  type HeldPack,
  type RetentionPolicy,
} from '../../src/lifecycle/retention.js';

const H = 3_600_000;
const D = 24 * H;

describe('retention spec', () => {
  it('parses the README example finest first', () => {
    const p = parseRetention('writes:1h,windows:24h,hourly:7d,daily:30d');
    expect(p).toEqual([
      { granularity: 'writes', ageMs: H },
      { granularity: 'windows', ageMs: D },
      { granularity: 'hourly', ageMs: 7 * D },
      { granularity: 'daily', ageMs: 30 * D },
    ]);
    expect(formatRetention(p)).toBe('writes:1h,windows:1d,hourly:1w,daily:30d');
    expect(parseRetention(formatRetention(p))).toEqual(p);
  });

  it('keeps everything with `all` or nothing', () => {
    expect(parseRetention('all')).toEqual([]);
    expect(parseRetention('')).toEqual([]);
    expect(writesAgeMs([])).toBe(Infinity);
    expect(horizonMs([])).toBe(Infinity);
    expect(granularityAt([], 1e12)).toBe('writes');
  });

  it.each([
    ['windows:1h,writes:2h', /finest first/],
    ['writes:2h,windows:1h', /further back/],
    ['writes:1h,writes:2h', /finest first/],
    ['weekly:4w', /not one of/],
    ['writes', /needs one age/],
    ['writes:1h:2h', /needs one age/],
    ['writes:0s', /longer than zero/],
    ['writes:soon', /not an age/],
    ['hourly:30m', /less than one hour/],
    ['daily:12h', /less than one day/],
    ['writes:200000w', /100 years/],
  ])('refuses %s with a message that says why', (spec, message) => {
    expect(() => parseRetention(spec)).toThrow(message);
    try {
      parseRetention(spec);
    } catch (err) {
      expect((err as { code: string }).code).toBe('BAD_ARGUMENT');
    }
  });

  it('reads ages in s, m, h, d and w', () => {
    expect(parseAge('90')).toBe(90_000);
    expect(parseAge('15m')).toBe(15 * 60_000);
    expect(parseAge('1.5h')).toBe(1.5 * H);
    expect(parseAge('2w')).toBe(14 * D);
  });

  it('tells the granularity a point is held at by its age', () => {
    const p = parseRetention('writes:1h,windows:24h,daily:30d');
    expect(granularityAt(p, 0)).toBe('writes');
    expect(granularityAt(p, H)).toBe('writes');
    expect(granularityAt(p, H + 1)).toBe('windows');
    expect(granularityAt(p, 2 * D)).toBe('daily');
    expect(granularityAt(p, 30 * D + 1)).toBeNull();
    expect(writesAgeMs(parseRetention('windows:1h'))).toBe(0);
  });
});

/** Packs made of windows of the given durations (ms between window ends), the last ending at `end`. */
function packsEndingAt(end: number, gaps: number[]): HeldPack[] {
  const packs: HeldPack[] = [];
  let t = end - gaps.reduce((a, b) => a + b, 0);
  let seq = 1;
  for (const gap of gaps) {
    t += gap;
    const writes = 1 + (gap % 7);
    packs.push({ firstSeq: seq, lastSeq: seq + writes - 1, t2: t });
    seq += writes;
  }
  return packs;
}

/** The packs after the plan is carried out: the prefix dropped, each run merged into one. */
function carryOut(packs: HeldPack[], plan: ReturnType<typeof planRetention>): HeldPack[] {
  const out: HeldPack[] = [];
  for (let i = plan.drop; i < packs.length; ) {
    const m = plan.merges.find((r) => r.from === i);
    const to = m ? m.to : i;
    out.push({ firstSeq: packs[i].firstSeq, lastSeq: packs[to].lastSeq, t2: packs[to].t2 });
    i = to + 1;
  }
  return out;
}

/** The seqs of the points the policy promises from these packs at `now`. */
function promised(policy: RetentionPolicy, now: number, packs: HeldPack[]): Set<number> {
  const points = new Set<number>();
  const lastInBucket = new Map<string, number>();
  for (const p of packs) {
    const g = granularityAt(policy, now - p.t2);
    if (g === null) continue;
    if (PERIOD_MS[g] === 0) points.add(p.lastSeq);
    else lastInBucket.set(`${g}:${Math.floor(p.t2 / PERIOD_MS[g])}`, p.lastSeq);
  }
  for (const seq of lastInBucket.values()) points.add(seq);
  return points;
}

describe('retention plan', () => {
  it('drops what is past the last term, merges within an hour, keeps the journal of the writes tier', () => {
    const policy = parseRetention('writes:1h,windows:2h,hourly:1d');
    const now = 10 * D;
    const packs: HeldPack[] = [
      { firstSeq: 1, lastSeq: 5, t2: now - 2 * D },            // past the last term
      { firstSeq: 6, lastSeq: 9, t2: now - 5 * H - 20 * 60_000 }, // hourly, one hour
      { firstSeq: 10, lastSeq: 12, t2: now - 5 * H - 10 * 60_000 },
      { firstSeq: 13, lastSeq: 13, t2: now - 4 * H - 30 * 60_000 }, // hourly, the next hour alone
      { firstSeq: 14, lastSeq: 20, t2: now - 90 * 60_000 },       // windows
      { firstSeq: 21, lastSeq: 22, t2: now - 80 * 60_000 },       // windows
      { firstSeq: 23, lastSeq: 30, t2: now - 10 * 60_000 },       // writes
      { firstSeq: 31, lastSeq: 31, t2: now - 60_000 },            // writes
    ];
    const plan = planRetention(policy, now, packs);
    expect(plan.drop).toBe(1);
    expect(plan.merges).toEqual([{ from: 1, to: 2, granularity: 'hourly' }]);
    expect(plan.journalFromSeq).toBe(23);
  });

  it('keeps everything, journal included, under the default policy', () => {
    const packs = packsEndingAt(100 * D, [5 * D, 3 * D, 1000, 1000]);
    expect(planRetention([], 100 * D, packs)).toEqual({ drop: 0, merges: [], journalFromSeq: 1 });
  });

  it('refuses packs that are not contiguous', () => {
    expect(() => planRetention([], 0, [{ firstSeq: 1, lastSeq: 3, t2: 0 }, { firstSeq: 5, lastSeq: 6, t2: 1 }])).toThrow(/contiguous/);
  });

  it('keeps every promised point, and a second plan made at once changes nothing (random packs and policies)', () => {
    const policies = ['writes:10m,windows:1h,minutely:3h,hourly:2d,daily:9d', 'windows:30m,daily:3d', 'writes:1h', 'hourly:6h,daily:2d', 'minutely:90m'];
    fc.assert(
      fc.property(
        fc.constantFrom(...policies),
        // Mostly windows seconds to minutes apart, some hours apart (so every tier holds several).
        fc.array(fc.oneof(fc.integer({ min: 1, max: 20 * 60_000 }), fc.integer({ min: 1, max: 6 * H })), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 0, max: 3 * D }),
        (spec, gaps, later) => {
          const policy = parseRetention(spec);
          const end = 50 * D;
          const now = end + later;
          const packs = packsEndingAt(end, gaps);
          const plan = planRetention(policy, now, packs);
          const after = carryOut(packs, plan);
          const ends = new Set(after.map((p) => p.lastSeq));
          for (const seq of promised(policy, now, packs)) expect(ends.has(seq)).toBe(true);
          // Every dropped pack is past the last term; every kept pack's end is still a point the policy names.
          for (let i = 0; i < plan.drop; i++) expect(granularityAt(policy, now - packs[i].t2)).toBeNull();
          // A merge never crosses a period or a tier.
          for (const m of plan.merges) {
            const g = granularityAt(policy, now - packs[m.from].t2);
            expect(g).toBe(m.granularity);
            expect(PERIOD_MS[m.granularity]).toBeGreaterThan(0);
            for (let i = m.from; i <= m.to; i++) {
              expect(granularityAt(policy, now - packs[i].t2)).toBe(g);
              expect(Math.floor(packs[i].t2 / PERIOD_MS[g!])).toBe(Math.floor(packs[m.from].t2 / PERIOD_MS[g!]));
            }
          }
          // One point per period once the period is complete in its tier (every window of it has
          // entered the tier): no two kept packs of a periodic tier end in the same complete period.
          const seen = new Set<string>();
          for (const p of after) {
            const g = granularityAt(policy, now - p.t2)!;
            if (PERIOD_MS[g] === 0) continue;
            if ((Math.floor(p.t2 / PERIOD_MS[g]) + 1) * PERIOD_MS[g] + enteredAfterMs(policy, g) > now) continue;
            const key = `${g}:${Math.floor(p.t2 / PERIOD_MS[g])}`;
            expect(seen.has(key), `two packs end in ${key}`).toBe(false);
            seen.add(key);
          }
          // Carried out, the plan is complete: planning again at the same time finds nothing to do.
          const again = planRetention(policy, now, after);
          expect(again.drop).toBe(0);
          expect(again.merges).toEqual([]);
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });
});
