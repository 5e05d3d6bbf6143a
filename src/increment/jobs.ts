// Chunk jobs in flight on the kernel pool. They share the pool's slots, so a failure is reported only
// once every job has settled (no slot is released under a job still using it), and a job that fails
// while the scheduler waits for a slot for the next one is not an unhandled rejection meanwhile.
export class Jobs {
  private readonly list: Promise<unknown>[] = [];

  add(job: Promise<unknown>): void {
    job.catch(() => undefined);
    this.list.push(job);
  }

  /** Waits for every job; rethrows the first failure after all have settled. */
  async settle(): Promise<void> {
    const results = await Promise.allSettled(this.list);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/**
 * Runs `issue`, which starts I/O on a slot's memory: some done at once (which may throw), some added
 * to the jobs it is given. Whatever happens, returns or throws only once every I/O it started has
 * settled, so the slot is never released under a read or write still using it, and no failure is left
 * unhandled.
 */
export async function slotIo(issue: (jobs: Jobs) => void): Promise<void> {
  const jobs = new Jobs();
  try {
    issue(jobs);
  } catch (err) {
    await jobs.settle().catch(() => undefined);
    throw err;
  }
  await jobs.settle();
}
