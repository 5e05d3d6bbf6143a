// What protection.ts promises: the oldest restorable point is the one before the oldest pack (or the
// applied point), with the time of the window ending there; required protection is the `writes` age
// or the horizon (null when everything is kept); predicted is capacity over the recent growth; and
// the alarm speaks once per crossing of 85 % and 75 % of the required protection, and on recovery.
import { describe, expect, it } from 'vitest';
import { parseRetention } from '../../src/lifecycle/retention.js';
import {
  growthBytesPerSecond, oldestRestorable, pointTime, ProtectionAlarm, protectionFigures, protectionLevel, requiredMs, type WindowFigures,
} from '../../src/lifecycle/protection.js';
import { formatSeconds } from '../../src/units.js';

const T0 = Date.UTC(2026, 0, 1);
const win = (lastSeq: number, t2: number, extra: Partial<WindowFigures> = {}): WindowFigures => ({ lastSeq, t2, writes: 1, bytesWritten: 0, packBytes: 0, ...extra });

describe('oldest restorable point', () => {
  const entries = [win(5, T0 + 5000), win(9, T0 + 9000), win(20, T0 + 20_000)];

  it('is the point before the oldest pack, at the end time of the window ending there', () => {
    expect(oldestRestorable([{ firstSeq: 10 }, { firstSeq: 21 }], entries, 20, T0)).toEqual({ seq: 9, time: T0 + 9000 });
  });

  it('is seq 0 at the creation of the store when the oldest pack starts at write 1', () => {
    expect(oldestRestorable([{ firstSeq: 1 }, { firstSeq: 6 }], entries, 20, T0)).toEqual({ seq: 0, time: T0 });
  });

  it('is the applied point when there is no pack', () => {
    expect(oldestRestorable([], entries, 20, T0)).toEqual({ seq: 20, time: T0 + 20_000 });
    expect(oldestRestorable([], [], 0, T0)).toEqual({ seq: 0, time: T0 });
  });

  it('a point inside a window takes the time of the last window ending before it', () => {
    expect(pointTime(entries, 7, T0)).toBe(T0 + 5000);
    expect(pointTime(entries, 3, T0)).toBe(T0);
  });
});

describe('protection figures', () => {
  it('required is the writes age, else the horizon, and null when everything is kept', () => {
    expect(requiredMs(parseRetention('writes:1h,windows:24h'))).toBe(3_600_000);
    expect(requiredMs(parseRetention('windows:2h,daily:30d'))).toBe(30 * 86_400_000);
    expect(requiredMs(parseRetention('all'))).toBeNull();
  });

  it('achieved is the age of the oldest point; predicted is capacity over growth, null without either', () => {
    const policy = parseRetention('writes:1h');
    const oldest = { seq: 0, time: T0 };
    expect(protectionFigures(policy, T0 + 90_000, oldest, 1000, 10)).toEqual({ requiredSeconds: 3600, achievedSeconds: 90, predictedSeconds: 100 });
    expect(protectionFigures(policy, T0 + 90_000, oldest, null, 10).predictedSeconds).toBeNull();
    expect(protectionFigures(policy, T0 + 90_000, oldest, 1000, 0).predictedSeconds).toBeNull();
    expect(protectionFigures(parseRetention('all'), T0 + 1000, oldest, null, 0)).toEqual({ requiredSeconds: null, achievedSeconds: 1, predictedSeconds: null });
  });

  it('growth counts the last minute of windows (pack, payload, record headers, index entry) and unapplied journal bytes', () => {
    const now = T0 + 3_600_000;
    const entries = [win(1, now - 120_000, { bytesWritten: 1e6, packBytes: 1e6 }), win(3, now - 30_000, { writes: 2, bytesWritten: 1000, packBytes: 2000 })];
    const since: number[] = [];
    const rate = growthBytesPerSecond(entries, (t) => (since.push(t), 904), now, T0);
    expect(since).toEqual([now - 60_000]);
    expect(rate).toBeCloseTo((2000 + 1000 + 2 * 48 + 128 + 904) / 60, 9);
    // A store younger than a minute: measured over its life (at least a second).
    expect(growthBytesPerSecond([], () => 600, T0 + 10_000, T0)).toBeCloseTo(60, 9);
    expect(growthBytesPerSecond([], () => 600, T0, T0)).toBeCloseTo(600, 9);
  });
});

describe('the protection alarm', () => {
  const p = (achievedSeconds: number, requiredSeconds: number | null = 100) => ({ requiredSeconds, achievedSeconds, predictedSeconds: null });
  const OLD = 1e6; // store age, well past the required protection

  it('levels: under 85 % of required is a warning, under 75 % an error', () => {
    expect(protectionLevel(p(100), OLD)).toBe('ok');
    expect(protectionLevel(p(85), OLD)).toBe('ok');
    expect(protectionLevel(p(84.9), OLD)).toBe('warning');
    expect(protectionLevel(p(75), OLD)).toBe('warning');
    expect(protectionLevel(p(74.9), OLD)).toBe('error');
    expect(protectionLevel(p(0, null), OLD)).toBe('ok');
  });

  it('a store younger than the required protection is measured against its age', () => {
    expect(protectionLevel(p(10), 10)).toBe('ok');
    expect(protectionLevel(p(8), 10)).toBe('warning');
    expect(protectionLevel(p(7), 10)).toBe('error');
  });

  it('speaks once per crossing, and when protection recovers', () => {
    const alarm = new ProtectionAlarm();
    expect(alarm.check(p(90), OLD)).toBeNull();
    const warn = alarm.check(p(80), OLD);
    expect(warn).toMatch(/^warning: protection under 85% of the required: achieved 1m 20s of the required 1m 40s/);
    expect(alarm.check(p(79), OLD)).toBeNull();
    expect(alarm.check(p(70), OLD)).toMatch(/^error: protection under 75% of the required: achieved 1m 10s/);
    expect(alarm.check(p(60), OLD)).toBeNull();
    expect(alarm.check(p(80), OLD)).toMatch(/^warning: /);
    expect(alarm.check(p(95), OLD)).toBe('protection recovered: achieved 1m 35s of the required 1m 40s');
    expect(alarm.check(p(99), OLD)).toBeNull();
  });
});

describe('formatSeconds', () => {
  it('gives the two largest units', () => {
    expect([0, 59.9, 60, 3599, 3600, 90_061, 30 * 86_400].map(formatSeconds)).toEqual(['0s', '59s', '1m', '59m 59s', '1h', '1d 1h', '30d']);
  });
});
