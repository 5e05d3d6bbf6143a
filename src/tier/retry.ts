// Retrying requests to the tier: exponential backoff with full jitter (a random wait between 0 and
// the doubled bound, so many clients throttled together do not come back together), a bounded number
// of attempts, and only for failures that may pass (throttling, 5xx, a connection refused or reset).

export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  capMs: number;
  /** [0, 1): injectable for seeded tests. */
  random(): number;
  /** Called before each wait, with what failed (the uploader counts and logs throttling). */
  onRetry?(err: unknown, attempt: number, waitMs: number): void;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseMs: 100, capMs: 5000, random: Math.random };

const TRANSIENT_NAMES = new Set(['SlowDown', 'ServiceUnavailable', 'InternalError', 'RequestTimeout', 'RequestTimeTooSkewed', 'TimeoutError', 'ThrottlingException', 'TooManyRequests', 'NetworkingError']);
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** True for a failure worth another attempt. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; cause?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.code && TRANSIENT_CODES.has(e.code)) return true;
  return e.cause !== undefined && e.cause !== err && isTransient(e.cause);
}

/** The wait before attempt `attempt` (1 = the first retry): full jitter over min(cap, base * 2^attempt). */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.floor(policy.random() * Math.min(policy.capMs, policy.baseMs * 2 ** attempt));
}

export async function withRetries<T>(policy: RetryPolicy, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= policy.attempts || !isTransient(err)) throw err;
      const wait = backoffMs(policy, attempt);
      policy.onRetry?.(err, attempt, wait);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
