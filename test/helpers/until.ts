// Waiting in tests: a test waits until a condition holds, never for a fixed time (a busy 2-core
// machine can take far longer than any guess). until() polls with a generous deadline and fails
// loudly, saying what it waited for.

export interface UntilOptions {
  /** Give up after this long (default 10 s: generous, so a loaded machine does not fail the test). */
  waitMs?: number;
  /** What is awaited, for the failure message (default: the condition's source). */
  what?: string;
  /** The state at the deadline, for the failure message (e.g. a counter the condition reads). */
  state?: () => string;
}

const POLL_MS = 5;

/** Resolves once cond() holds; throws if it still does not after opts.waitMs. */
export async function until(cond: () => boolean | Promise<boolean>, opts: UntilOptions = {}): Promise<void> {
  const waitMs = opts.waitMs ?? 10_000;
  const deadline = Date.now() + waitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      const what = opts.what ?? cond.toString().replace(/^\s*(async\s*)?\(\)\s*=>\s*/, '');
      const state = opts.state ? ` (${opts.state()})` : '';
      throw new Error(`timed out after ${waitMs} ms waiting until ${what}${state}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
