// End-to-end set-up for `rewind serve` tests: the shared child-process helpers, plus reading
// `rewind status` and making stores through the real bin.

import { ok, rewind } from '../helpers/processes.js';
import { until } from '../helpers/until.js';

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

/** Runs `rewind status` until cond holds (or throws after waitMs, with the last status). */
export async function statusUntil(store: string, cond: (s: Status) => boolean, waitMs = 10_000): Promise<Status> {
  let last: Status | null = null;
  await until(async () => cond((last = await status(store))), { waitMs, what: 'rewind status reached the condition', state: () => JSON.stringify(last) });
  return last!;
}

export async function initStore(store: string, volume = 'disk0:64M', window = 'count:50'): Promise<void> {
  ok(await rewind(['init', store, '--volume', volume, '--window', window]));
}

