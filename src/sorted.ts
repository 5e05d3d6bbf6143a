// Search over arrays kept in ascending order (binary search).

/** First index at which `pred` holds, for a predicate that is false then true along the array. */
export function lowerBound<T>(items: ArrayLike<T>, pred: (item: T) => boolean): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(items[mid])) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
