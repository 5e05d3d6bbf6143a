// The window scheduler promises: a window policy is parsed from a spec of comma-separated terms
// (time:<duration>, count:<n>, bytes:<size>, adaptive[:<size>], marker) and a malformed one is
// refused with a message naming the term; a window closes when any term says so — a fixed period
// at t1 + period, a count or byte threshold when reached — and always at the hard limits; a flush
// closes it only under the marker policy; the adaptive period follows the write rate, shrinking
// toward minMs when writes are fast and growing toward maxMs when slow, never leaving [minMs, maxMs].
// Every time here is explicit: the scheduler only counts, so nothing sleeps.

import { describe, expect, it } from 'vitest';
import { RewindError } from '../../src/errors.js';
import { LIMITS } from '../../src/limits.js';
import { ADAPTIVE_DEFAULTS, parseWindowSpec, type WindowPolicy } from '../../src/window/policy.js';
import { WindowScheduler, type SchedulerLimits } from '../../src/window/scheduler.js';
import { prng } from '../../src/prng.js';


const MiB = 2 ** 20;
const HARD: SchedulerLimits = { windowBytesMax: LIMITS.windowBytesMax, windowWritesMax: LIMITS.windowWritesMax };
const scheduler = (spec: string, limits = HARD) => new WindowScheduler(parseWindowSpec(spec), limits);

describe('parseWindowSpec', () => {
  it.each<[string, WindowPolicy]>([
    ['time:1s', { periodMs: 1000, marker: false }],
    ['time:250ms', { periodMs: 250, marker: false }],
    ['time:2m', { periodMs: 120_000, marker: false }],
    ['count:1', { writes: 1, marker: false }],
    ['count:1000', { writes: 1000, marker: false }],
    [`count:${LIMITS.windowWritesMax}`, { writes: LIMITS.windowWritesMax, marker: false }],
    ['bytes:64M', { bytes: 64 * MiB, marker: false }],
    ['bytes:4096', { bytes: 4096, marker: false }],
    ['bytes:512K', { bytes: 512 * 1024, marker: false }],
    ['adaptive', { adaptive: { ...ADAPTIVE_DEFAULTS }, marker: false }],
    ['adaptive:1M', { adaptive: { ...ADAPTIVE_DEFAULTS, targetBytes: MiB }, marker: false }],
    ['marker', { marker: true }],
    ['time:1s,count:100', { periodMs: 1000, writes: 100, marker: false }],
    ['time:500ms, bytes:1M, marker', { periodMs: 500, bytes: MiB, marker: true }],
    ['adaptive:2M,count:10', { adaptive: { ...ADAPTIVE_DEFAULTS, targetBytes: 2 * MiB }, writes: 10, marker: false }],
  ])('accepts %j', (spec, policy) => {
    expect(parseWindowSpec(spec)).toEqual(policy);
  });

  it('uses the documented adaptive bounds: 50ms to 2s, 16M per window by default', () => {
    expect(ADAPTIVE_DEFAULTS).toEqual({ targetBytes: 16 * MiB, minMs: 50, maxMs: 2000 });
  });

  it.each<[string, RegExp]>([
    ['', /empty/],
    ['   ', /empty/],
    ['time', /"time" needs one value, e\.g\. time:1s/],
    ['time:', /"time:" needs one value/],
    ['time:1s:2', /"time:1s:2" needs one value/],
    ['time:soon', /"soon" is not a duration/],
    ['time:0s', /must be longer than zero/],
    ['time:-1s', /"-1s" is not a duration/],
    ['count', /"count" needs one value, e\.g\. count:1000/],
    ['count:0', /"count:0" must be a whole number from 1 to 65536/],
    ['count:1.5', /"count:1.5" must be a whole number/],
    ['count:ten', /"count:ten" must be a whole number/],
    [`count:${LIMITS.windowWritesMax + 1}`, /must be a whole number from 1 to 65536/],
    ['bytes', /"bytes" needs one value, e\.g\. bytes:64M/],
    ['bytes:0', /"bytes:0" must be from 1 byte to/],
    ['bytes:65M', /"bytes:65M" must be from 1 byte to 67108864/],
    ['bytes:1X', /"1X" is not a size/],
    ['adaptive:0', /adaptive target "adaptive:0" must be from 1 byte/],
    ['adaptive:1M:2', /adaptive target "adaptive:1M:2"/],
    ['adaptive:lots', /"lots" is not a size/],
    ['marker:1', /"marker" takes no value/],
    ['weekly', /unknown window policy "weekly"/],
    ['time:1s,', /unknown window policy ""/],
    ['time:1s,,count:5', /unknown window policy ""/],
    ['time:1s,daily:1', /unknown window policy "daily:1"/],
  ])('rejects %j with a message naming the problem', (spec, message) => {
    let err: unknown;
    try {
      parseWindowSpec(spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RewindError);
    expect((err as RewindError).code).toBe('BAD_ARGUMENT');
    expect((err as RewindError).message).toMatch(message);
  });
});

describe('fixed period', () => {
  it('opens a window at its first write and makes it due at t1 + period', () => {
    const s = scheduler('time:1s');
    expect(s.current).toBeNull();
    expect(s.nextDeadline()).toBe(Infinity);
    expect(s.isDue(1e12)).toBe(false);
    expect(s.mustCloseBefore(10, 1e12)).toBe(false); // nothing to close yet

    expect(s.noteWrite(1, 100, 10_000)).toBe(false);
    expect(s.current).toMatchObject({ firstSeq: 1, lastSeq: 1, t1: 10_000, t2: 10_000, writes: 1, bytes: 100, deadline: 11_000 });
    // Later writes do not move the deadline: the period is measured from the first write.
    expect(s.noteWrite(2, 100, 10_600)).toBe(false);
    expect(s.noteWrite(3, 100, 10_999)).toBe(false);
    expect(s.nextDeadline()).toBe(11_000);
    expect(s.isDue(10_999)).toBe(false);
    expect(s.isDue(11_000)).toBe(true);
    expect(s.mustCloseBefore(1, 10_999)).toBe(false);
    expect(s.mustCloseBefore(1, 11_000)).toBe(true);

    const w = s.close(11_000);
    expect(w).toMatchObject({ firstSeq: 1, lastSeq: 3, t1: 10_000, t2: 10_999, writes: 3, bytes: 300 });
    expect(s.current).toBeNull();
    expect(s.close(11_001)).toBeNull(); // nothing open
    // The next window's period starts at its own first write.
    s.noteWrite(4, 1, 20_000);
    expect(s.nextDeadline()).toBe(21_000);
  });

  it('does not close a time-only window by count or bytes below the hard limits', () => {
    const s = scheduler('time:1h');
    for (let i = 1; i <= 1000; i++) expect(s.noteWrite(i, 32 * 1024, i)).toBe(false);
    expect(s.current?.writes).toBe(1000);
  });

  it('insists that window writes are consecutive', () => {
    const s = scheduler('time:1s');
    s.noteWrite(5, 1, 0);
    expect(() => s.noteWrite(7, 1, 0)).toThrow(/consecutive/);
  });
});

describe('quantity', () => {
  it('count:N closes exactly at the N-th write', () => {
    const s = scheduler('count:3');
    expect([s.noteWrite(1, 1, 0), s.noteWrite(2, 1, 0), s.noteWrite(3, 1, 0)]).toEqual([false, false, true]);
    expect(s.close(0)).toMatchObject({ firstSeq: 1, lastSeq: 3, writes: 3 });
    // No time limit: a count window is never due.
    s.noteWrite(4, 1, 0);
    expect(s.nextDeadline()).toBe(Infinity);
    expect(s.isDue(1e15)).toBe(false);
  });

  it('bytes:N closes at the write that reaches N bytes, not before', () => {
    const s = scheduler('bytes:100');
    expect(s.noteWrite(1, 40, 0)).toBe(false);
    expect(s.noteWrite(2, 59, 0)).toBe(false); // 99
    expect(s.noteWrite(3, 1, 0)).toBe(true); // exactly 100
    s.close(0);
    expect(s.noteWrite(4, 99, 0)).toBe(false);
    expect(s.noteWrite(5, 500, 0)).toBe(true); // past it
  });

  it('a combination closes at whichever term comes first', () => {
    const s = scheduler('time:1s,count:3');
    s.noteWrite(1, 1, 0);
    s.noteWrite(2, 1, 100);
    expect(s.noteWrite(3, 1, 200)).toBe(true); // count first
    s.close(200);
    s.noteWrite(4, 1, 1000);
    expect(s.isDue(1999)).toBe(false);
    expect(s.isDue(2000)).toBe(true); // time first
    expect(s.current?.writes).toBe(1);
  });
});

describe('hard limits', () => {
  const limits = { windowBytesMax: 1000, windowWritesMax: 4 };

  it.each(['time:1h', 'count:100', 'bytes:64M', 'adaptive:64M', 'marker'])('%s closes at windowWritesMax writes', (spec) => {
    const s = scheduler(spec, limits);
    expect([1, 2, 3, 4].map((i) => s.noteWrite(i, 1, 0))).toEqual([false, false, false, true]);
  });

  it.each(['time:1h', 'count:100', 'bytes:64M', 'adaptive:64M', 'marker'])('%s closes when it reaches windowBytesMax bytes', (spec) => {
    const s = scheduler(spec, limits);
    expect(s.noteWrite(1, 600, 0)).toBe(false);
    expect(s.noteWrite(2, 400, 0)).toBe(true);
  });

  it('closes the open window before a write that would take it past windowBytesMax or windowWritesMax', () => {
    const s = scheduler('time:1h', limits);
    s.noteWrite(1, 600, 0);
    expect(s.mustCloseBefore(400, 0)).toBe(false); // lands exactly on the limit
    expect(s.mustCloseBefore(401, 0)).toBe(true);
    s.noteWrite(2, 1, 0);
    s.noteWrite(3, 1, 0);
    expect(s.mustCloseBefore(1, 0)).toBe(false); // 4th write still fits
    s.noteWrite(4, 1, 0);
    expect(s.mustCloseBefore(1, 0)).toBe(true); // a 5th would not
  });
});

describe('marker', () => {
  it('closes at a flush only under the marker policy and only when a window is open', () => {
    const m = scheduler('marker');
    expect(m.closesAtFlush()).toBe(false); // nothing open
    expect(m.noteWrite(1, 1, 0)).toBe(false);
    expect(m.closesAtFlush()).toBe(true);
    expect(m.nextDeadline()).toBe(Infinity); // no time limit of its own
    for (const spec of ['time:1s', 'count:5', 'bytes:1M', 'adaptive']) {
      const s = scheduler(spec);
      s.noteWrite(1, 1, 0);
      expect(s.closesAtFlush(), spec).toBe(false);
    }
    const both = scheduler('time:1s,marker');
    both.noteWrite(1, 1, 0);
    expect(both.closesAtFlush()).toBe(true);
    expect(both.nextDeadline()).toBe(1000);
  });
});

describe('adaptive', () => {
  const target = MiB;
  const { minMs, maxMs } = ADAPTIVE_DEFAULTS;

  /** Runs one window: `writes` writes of `bytes` spread over `ms`, closed at t1 + ms. Returns the period the window had. */
  function runWindow(s: WindowScheduler, at: { seq: number; t: number }, writes: number, bytes: number, ms: number): number {
    const t1 = at.t;
    s.noteWrite(at.seq++, bytes, t1);
    const period = s.current!.deadline - t1;
    for (let i = 1; i < writes; i++) s.noteWrite(at.seq++, bytes, t1 + Math.floor((ms * i) / writes));
    s.close(t1 + ms);
    at.t = t1 + ms;
    return period;
  }

  it('starts at maxMs, before any rate is known', () => {
    const s = scheduler('adaptive:1M');
    expect(s.adaptivePeriodMs()).toBe(maxMs);
    s.noteWrite(1, 1, 5000);
    expect(s.nextDeadline()).toBe(5000 + maxMs);
  });

  it('closes at the target bytes', () => {
    const s = scheduler('adaptive:1M');
    expect(s.noteWrite(1, target - 1, 0)).toBe(false);
    expect(s.noteWrite(2, 1, 0)).toBe(true);
  });

  it('shrinks the period toward minMs at a high write rate, and stops there', () => {
    const s = scheduler('adaptive:1M');
    const at = { seq: 1, t: 0 };
    const periods: number[] = [];
    // 1 MiB every 5 ms = 200 MiB/s: the target fills in 5 ms, far below minMs.
    for (let i = 0; i < 8; i++) periods.push(runWindow(s, at, 4, target / 4, 5));
    expect(periods[0]).toBe(maxMs);
    for (let i = 1; i < periods.length; i++) expect(periods[i]).toBeLessThanOrEqual(periods[i - 1]);
    expect(periods.at(-1)).toBe(minMs);
    expect(s.adaptivePeriodMs()).toBe(minMs);
  });

  it('picks the period that fills the target at the observed rate, between the bounds', () => {
    const s = scheduler('adaptive:1M');
    const at = { seq: 1, t: 0 };
    // A steady 2 MiB/s: 1 MiB takes 500 ms.
    for (let i = 0; i < 12; i++) runWindow(s, at, 8, MiB / 8, 500);
    expect(s.adaptivePeriodMs()).toBeCloseTo(500, 0);
  });

  it('grows the period toward maxMs when the rate drops, and stops there', () => {
    const s = scheduler('adaptive:1M');
    const at = { seq: 1, t: 0 };
    for (let i = 0; i < 8; i++) runWindow(s, at, 4, target / 4, 5);
    expect(s.adaptivePeriodMs()).toBe(minMs);
    const periods: number[] = [s.adaptivePeriodMs()];
    // Then 4 KiB per 2 s: 2 KiB/s, the target would take over eight minutes.
    for (let i = 0; i < 30; i++) {
      runWindow(s, at, 1, 4096, 2000);
      periods.push(s.adaptivePeriodMs());
    }
    for (let i = 1; i < periods.length; i++) expect(periods[i]).toBeGreaterThanOrEqual(periods[i - 1]);
    // The rate is smoothed over windows (halving each time), so it takes a few slow windows to move.
    expect(periods[6]).toBeGreaterThan(minMs);
    expect(periods[6]).toBeLessThan(maxMs);
    expect(periods.at(-1)).toBe(maxMs);
  });

  it('never leaves [minMs, maxMs], whatever the windows look like', () => {
    const rand = prng(11);
    for (const spec of ['adaptive', 'adaptive:1', 'adaptive:64K', 'adaptive:64M', 'adaptive:1M,time:1h']) {
      const s = scheduler(spec);
      const at = { seq: 1, t: 1_700_000_000_000 };
      for (let i = 0; i < 300; i++) {
        const writes = 1 + ((rand() * 5) | 0);
        const bytes = 1 + ((rand() * 4 * MiB) | 0);
        const ms = rand() < 0.2 ? 0 : (rand() * 5000) | 0; // including windows closed at once
        const period = runWindow(s, at, writes, bytes, ms);
        expect(period, `${spec} window ${i}`).toBeGreaterThanOrEqual(minMs);
        expect(period, `${spec} window ${i}`).toBeLessThanOrEqual(maxMs);
        const p = s.adaptivePeriodMs();
        expect(p).toBeGreaterThanOrEqual(minMs);
        expect(p).toBeLessThanOrEqual(maxMs);
      }
    }
  });

  it('a fixed period shorter than the adaptive one wins', () => {
    const s = scheduler('adaptive:1M,time:100ms');
    s.noteWrite(1, 1, 0);
    expect(s.nextDeadline()).toBe(100);
  });
});
