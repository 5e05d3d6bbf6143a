// Running async jobs a bounded number at a time: the uploader's files, a base's chunks, a restore's
// ranged GETs. The first failure stops new jobs from starting; it is thrown once all running ones end.

export async function forEachBounded<T>(items: readonly T[], inFlightMax: number, job: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  const lane = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        await job(items[i], i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(inFlightMax, items.length)) }, lane));
  if (failure) throw (failure as { err: unknown }).err;
}
