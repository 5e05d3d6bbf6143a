// End-to-end set-up for `rewind serve` tests: the shared child-process helpers, plus reading
// `rewind status` and making stores through the real bin.

import { ok, rewind } from '../helpers/processes.js';

export * from '../helpers/processes.js';

export interface Status {
  lastSeq: number;
  lastTime: string | null;
  appliedSeq: number;
  transactions: number;
  volumes: { name: string; size: number }[];
}

/** `rewind status --json`, run as its own process (alongside a running server). */
export async function status(store: string): Promise<Status> {
  return JSON.parse(ok(await rewind(['status', store, '--json'])).stdout) as Status;
}

/** Polls `rewind status` until cond holds (or throws after waitMs). */
export async function statusUntil(store: string, cond: (s: Status) => boolean, waitMs = 10_000): Promise<Status> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const s = await status(store);
    if (cond(s)) return s;
    if (Date.now() > deadline) throw new Error(`status never reached the condition: ${JSON.stringify(s)}`);
    await sleep(50);
  }
}

export async function initStore(store: string, volume = 'disk0:64M', window = 'count:50'): Promise<void> {
  ok(await rewind(['init', store, '--volume', volume, '--window', window]));
}

