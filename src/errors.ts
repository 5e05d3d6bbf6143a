// One error class for everything rewind reports to a user or a caller: a stable `code` to match on,
// and a message that names the volume, offset, sequence number or limit involved.

export type RewindErrorCode =
  | 'BAD_ARGUMENT'
  | 'UNKNOWN_VOLUME'
  /** An NBD client asked for an export that does not exist or cannot be opened (NBD_REP_ERR_UNKNOWN). */
  | 'UNKNOWN_EXPORT'
  | 'OUT_OF_RANGE'
  | 'LIMIT_EXCEEDED'
  | 'TARGET_OUT_OF_RANGE'
  | 'CORRUPT'
  | 'STORE_NOT_FOUND'
  | 'STORE_EXISTS'
  | 'STORE_LOCKED'
  | 'READ_ONLY'
  | 'CLOSED'
  | 'IO'
  /** The second tier (an S3 service) failed a request after retries, or refused it. */
  | 'TIER'
  /** A broken invariant: a bug in rewind (or a file changed behind its back), never bad input. */
  | 'INVARIANT';

export class RewindError extends Error {
  readonly code: RewindErrorCode;
  /** Node-style errno the NBD layer maps to a protocol error (EINVAL, ENOSPC, EPERM, EIO). */
  readonly errno: 'EINVAL' | 'ENOSPC' | 'EPERM' | 'EIO';

  constructor(code: RewindErrorCode, message: string, errno?: RewindError['errno'], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RewindError';
    this.code = code;
    this.errno = errno ?? (code === 'OUT_OF_RANGE' ? 'ENOSPC' : code === 'READ_ONLY' ? 'EPERM' : code === 'CORRUPT' || code === 'IO' || code === 'INVARIANT' ? 'EIO' : 'EINVAL');
  }
}

export const badArgument = (what: string) => new RewindError('BAD_ARGUMENT', what);
export const unknownVolume = (name: string, known: string[]) =>
  new RewindError('UNKNOWN_VOLUME', `unknown volume "${name}" (volumes: ${known.join(', ') || 'none'})`);
export const unknownExport = (name: string, known: string[]) =>
  new RewindError('UNKNOWN_EXPORT', `unknown export "${name}" (exports: ${known.map((n) => `"${n}"`).join(', ') || 'none'})`);
/** The export name parses, but what it names cannot be opened (a view of a point that does not exist). */
export const exportUnavailable = (name: string, cause: unknown) =>
  new RewindError('UNKNOWN_EXPORT', `export "${name}": ${cause instanceof Error ? cause.message : String(cause)}`, undefined, { cause });
export const outOfRange = (volume: string, offset: number, length: number, size: number) =>
  new RewindError('OUT_OF_RANGE', `volume "${volume}": range ${offset}+${length} ends past the volume size ${size}`);
export const limitExceeded = (what: string, value: number, limit: number) =>
  new RewindError('LIMIT_EXCEEDED', `${what} ${value} exceeds the limit ${limit}`);
export const targetOutOfRange = (what: string) => new RewindError('TARGET_OUT_OF_RANGE', what);
export const corrupt = (file: string, position: number, what: string) =>
  new RewindError('CORRUPT', `${file} at byte ${position}: ${what}`);
/** A write past a space limit that is not the disk's (a clone's --max-bytes): ENOSPC over NBD. */
export const noSpace = (what: string) => new RewindError('LIMIT_EXCEEDED', what, 'ENOSPC');
export const readOnly = (what: string) => new RewindError('READ_ONLY', what);
export const tierFailed = (what: string, cause?: unknown) =>
  new RewindError('TIER', cause === undefined ? what : `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, 'EIO', { cause });
export const closed = (what: string) => new RewindError('CLOSED', `${what} is closed`);

/**
 * An invariant that must hold; failing means a bug in rewind, never bad input. The message names the
 * invariant (what should be true), so a failure reads as the rule that broke.
 */
export function assert(condition: unknown, invariant: string): asserts condition {
  if (!condition) throw new RewindError('INVARIANT', `rewind invariant violated: ${invariant}`);
}
