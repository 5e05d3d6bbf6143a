// Exit codes of the rewind command, and which error maps to which.
import { RewindError } from '../errors.js';

export const EXIT = {
  OK: 0,
  /** verify found damage, or a command met damaged data */
  DAMAGE: 1,
  /** bad arguments: unknown option or volume, malformed size or time, target out of range */
  USAGE: 2,
  /** the store cannot be used: missing, already exists, locked by a writer; the tier cannot be reached */
  STORE: 3,
  /** anything else (an I/O error, a bug) */
  SOFTWARE: 70,
} as const;

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof RewindError)) return EXIT.SOFTWARE;
  switch (err.code) {
    case 'CORRUPT':
      return EXIT.DAMAGE;
    case 'STORE_NOT_FOUND':
    case 'STORE_EXISTS':
    case 'STORE_LOCKED':
    case 'TIER':
      return EXIT.STORE;
    case 'IO':
    case 'CLOSED':
    case 'INVARIANT':
      return EXIT.SOFTWARE;
    default:
      return EXIT.USAGE;
  }
}
