// Which packs one merge step takes: always at least two consecutive ones, within the read budget
// when more than two, and chosen so that merging a long period reads each byte a logarithmic number
// of times rather than once per pack (the step-wise merge into one growing pack was quadratic).
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { mergeStep } from '../../src/lifecycle/merge.js';

it('takes at least two consecutive packs, more only within the budget', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 2, maxLength: 60 }), fc.integer({ min: 1, max: 5000 }), (sizes, budget) => {
      const { from, to, bytes } = mergeStep(sizes, budget);
      expect(from).toBeGreaterThanOrEqual(0);
      expect(to).toBeLessThan(sizes.length);
      expect(to - from).toBeGreaterThanOrEqual(1);
      expect(bytes).toBe(sizes.slice(from, to + 1).reduce((a, b) => a + b, 0));
      if (to - from > 1) expect(bytes).toBeLessThanOrEqual(budget);
    }),
    { seed: 3, numRuns: 500 },
  );
});

/** Bytes read to merge `n` packs of one size into one, a step at a time; a merged pack is the sum of its parts, up to `cap` (a volume's changed blocks bound it). */
function readToMergeAll(n: number, size: number, budget: number, cap: number): number {
  let sizes = Array.from({ length: n }, () => size);
  let read = 0;
  while (sizes.length > 1) {
    const { from, to, bytes } = mergeStep(sizes, budget);
    read += bytes;
    sizes = [...sizes.slice(0, from), Math.min(cap, bytes), ...sizes.slice(to + 1)];
  }
  return read;
}

it('reads each byte of a long period a logarithmic number of times', () => {
  const MiB = 2 ** 20;
  // An hour of 1 s windows of 8 MiB packs, a 256 MiB budget, packs of the merged period bounded by 2 GiB.
  const read = readToMergeAll(3600, 8 * MiB, 256 * MiB, 2048 * MiB);
  const total = 3600 * 8 * MiB;
  expect(read / total).toBeLessThan(Math.log2(3600) + 1);
});
