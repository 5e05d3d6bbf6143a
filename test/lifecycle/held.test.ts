// The points a store holds, from its chain of packs and how far back its journal reaches.
import { describe, expect, it } from 'vitest';
import { chainOf, heldAs, isHeld, nearestHeld, oldestHeld, type HeldState } from '../../src/lifecycle/held.js';

describe('chain of packs', () => {
  it('takes the largest packs and calls the ones they cover superseded, whatever the order', () => {
    const files = [
      { firstSeq: 11, lastSeq: 20 }, { firstSeq: 1, lastSeq: 5 }, { firstSeq: 6, lastSeq: 10 },
      { firstSeq: 1, lastSeq: 10 }, { firstSeq: 21, lastSeq: 30 },
    ];
    const { chain, superseded } = chainOf(files);
    expect(chain).toEqual([{ firstSeq: 1, lastSeq: 10 }, { firstSeq: 11, lastSeq: 20 }, { firstSeq: 21, lastSeq: 30 }]);
    expect(superseded).toEqual([{ firstSeq: 1, lastSeq: 5 }, { firstSeq: 6, lastSeq: 10 }]);
  });

  it('refuses packs that overlap without one covering the other (never written)', () => {
    expect(() => chainOf([{ firstSeq: 1, lastSeq: 10 }, { firstSeq: 5, lastSeq: 15 }])).toThrow(/chain/);
  });
});

describe('held points', () => {
  // Packs 4..10 (merged), 11..15, 16..20; journal from 11; applied 20; newest write 25.
  const s: HeldState = { packs: [{ firstSeq: 4, lastSeq: 10 }, { firstSeq: 11, lastSeq: 15 }, { firstSeq: 16, lastSeq: 20 }], journalFirstSeq: 11, appliedSeq: 20, lastSeq: 25 };

  it('holds the point before the oldest pack, every pack end, every write the journal reaches, and everything after the applied point', () => {
    expect(oldestHeld(s)).toBe(3);
    const held = Array.from({ length: 27 }, (_, seq) => seq).filter((seq) => isHeld(s, seq));
    expect(held).toEqual([3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  });

  it('names the nearest held points on both sides of one that is not', () => {
    expect(nearestHeld(s, 1)).toEqual({ before: null, after: 3 });
    expect(nearestHeld(s, 7)).toEqual({ before: 3, after: 10 });
    expect(nearestHeld(s, 12)).toEqual({ before: 12, after: 12 });
    expect(nearestHeld(s, 30)).toEqual({ before: 25, after: null });
  });

  it('says how finely each point is held', () => {
    expect(heldAs(s, 3)).toBe('pack');
    expect(heldAs(s, 10)).toBe('pack');
    expect(heldAs(s, 7)).toBeNull();
    expect(heldAs(s, 15)).toBe('write');
    expect(heldAs(s, 23)).toBe('write');
  });

  it('holds every point when nothing was retired', () => {
    const all: HeldState = { packs: [{ firstSeq: 1, lastSeq: 4 }, { firstSeq: 5, lastSeq: 9 }], journalFirstSeq: 1, appliedSeq: 9, lastSeq: 9 };
    for (let seq = 0; seq <= 9; seq++) expect(isHeld(all, seq)).toBe(true);
    expect(isHeld(all, 10)).toBe(false);
  });
});
