// The narrow interface between the NBD protocol layer and whatever stores the bytes. The server
// never knows what backs an export; it checks every request before any of these methods is called,
// so an export sees only in-range, well-formed calls (offset + length <= size, length >= 1, reads
// and writes no longer than the server's maxPayloadBytes, 64 MiB by default; no writes on a
// read-only export). The export's errors carry their own vocabulary: the server reads only a
// string `code` or `errno` (see nbdErrorFor and ExportProvider.open).

import { NBD_EINVAL, NBD_EIO, NBD_ENOSPC, NBD_EPERM } from './constants.js';

export interface NbdExport {
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  readonly canTrim: boolean;
  /** True only when flush on one connection covers writes acknowledged on every connection. */
  readonly canMultiConn: boolean;
  /** Returns exactly `length` bytes. */
  read(offset: number, length: number): Buffer | Promise<Buffer>;
  /**
   * `data` may be a view into a buffer the server reuses: the export copies what it keeps before
   * it returns (or before its promise resolves). Calls arrive in the order requests arrived on a
   * connection.
   */
  write(offset: number, data: Buffer, fua: boolean): void | Promise<void>;
  writeZeroes(offset: number, length: number, fua: boolean): void | Promise<void>;
  trim(offset: number, length: number, fua: boolean): void | Promise<void>;
  flush(): void | Promise<void>;
  /** The connection is done with it (views release resources). Called once, after every call settled. */
  close(): void | Promise<void>;
}

export interface ExportProvider {
  list(): { name: string; description?: string }[];
  /**
   * Opens `name` for one connection. A thrown error refuses the client with the error's message:
   * NBD_REP_ERR_POLICY if its `code` is EXPORT_POLICY_CODE (the export exists but policy forbids
   * this client from using it now), NBD_REP_ERR_UNKNOWN for anything else (no export by that name,
   * or it cannot be opened). Any error class will do: the server looks only at `code` and `message`.
   */
  open(name: string): NbdExport | Promise<NbdExport>;
}

/** The `code` of an error thrown by ExportProvider.open() that refuses a client by policy. */
export const EXPORT_POLICY_CODE = 'EXPORT_POLICY';

// Node-style errno names an export method may throw with (as `code`, or as a string `errno`, as
// RewindError carries), mapped to NBD error values. Anything else is EIO.
const ERRNO_TO_NBD: Record<string, number> = {
  EPERM: NBD_EPERM,
  EROFS: NBD_EPERM,
  EACCES: NBD_EPERM,
  EIO: NBD_EIO,
  EINVAL: NBD_EINVAL,
  ENOSPC: NBD_ENOSPC,
  // proto.md: a server SHOULD map EDQUOT and EFBIG to ENOSPC.
  EDQUOT: NBD_ENOSPC,
  EFBIG: NBD_ENOSPC,
};

/** The NBD error value for an error thrown by an export method. */
export function nbdErrorFor(err: unknown): number {
  if (err !== null && typeof err === 'object') {
    const { code, errno } = err as { code?: unknown; errno?: unknown };
    if (typeof code === 'string' && code in ERRNO_TO_NBD) return ERRNO_TO_NBD[code]!;
    if (typeof errno === 'string' && errno in ERRNO_TO_NBD) return ERRNO_TO_NBD[errno]!;
  }
  return NBD_EIO;
}
