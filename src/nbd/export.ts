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
  /**
   * Block status (NBD_CMD_BLOCK_STATUS) of metadata context `context`, one of the names the export
   * was opened with, for [offset, offset + length) (in range, length >= 1): consecutive extents from
   * `offset`, at least one; the server clips them to the request. Without this method,
   * `base:allocation` (the only context then offered) is answered "allocated, contents unknown" (flags 0).
   */
  blockStatus?(context: string, offset: number, length: number): readonly BlockStatusExtent[] | Promise<readonly BlockStatusExtent[]>;
}

/** A run of bytes with one status: the meaning of `flags` is the metadata context's. */
export interface BlockStatusExtent {
  readonly length: number;
  readonly flags: number;
}

/** What the client negotiated for the export it opens (NBD_OPT_SET_META_CONTEXT). */
export interface OpenOptions {
  /** The metadata contexts selected for this export, `base:allocation` included when chosen. */
  readonly metaContexts: readonly string[];
}

export interface ExportProvider {
  list(): { name: string; description?: string }[];
  /**
   * Opens `name` for one connection. A thrown error refuses the client with the error's message:
   * NBD_REP_ERR_POLICY if its `code` is EXPORT_POLICY_CODE (the export exists but policy forbids
   * this client from using it now), NBD_REP_ERR_UNKNOWN for anything else (no export by that name,
   * or it cannot be opened). Any error class will do: the server looks only at `code` and `message`.
   */
  open(name: string, opts?: OpenOptions): NbdExport | Promise<NbdExport>;
  /**
   * Metadata contexts of export `name` outside the `base:` namespace (the server answers `base:`
   * itself): for NBD_OPT_LIST_META_CONTEXT (`mode` 'list'; `queries` null: every context, or a
   * leaf-less query such as "qemu:" as a wildcard) or NBD_OPT_SET_META_CONTEXT ('set': the names
   * each selecting one context). Queries of unknown namespaces are ignored. Returns the matching
   * context names; null when there is no export by that name. A thrown error refuses the option with
   * its message (NBD_REP_ERR_INVALID). Without this method only `base:allocation` is offered.
   */
  metaContexts?(name: string, queries: readonly string[] | null, mode: 'list' | 'set'): string[] | null;
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
