// How the store reports a failed disk operation: an OS error becomes a RewindError with code IO and
// the errno the NBD layer answers with (ENOSPC for a full disk, EIO for the rest), and which failures
// are worth retrying.
import { RewindError } from '../errors.js';

/** `what` failed because of `err`: a RewindError as it is, an OS error as code IO (ENOSPC or EIO). */
export function ioError(what: string, err: unknown): RewindError {
  if (err instanceof RewindError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const errno = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' ? 'ENOSPC' : 'EIO';
  return new RewindError('IO', `${what} failed: ${(err as Error)?.message ?? err}`, errno, { cause: err });
}

/** Errors worth retrying: the disk, not the data or the code. */
export function isTransient(err: unknown): boolean {
  if (err instanceof RewindError) return err.code === 'IO';
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EAGAIN';
}
