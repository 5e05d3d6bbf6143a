// The second tier's view of an object store: a flat namespace of immutable objects under one root,
// with the five operations the tier needs. The S3 client (s3-store.ts) is one implementation; tests
// substitute an in-memory one with injected faults. Nothing here lists a bucket: what exists is what
// the manifest says (manifest.ts).

export interface ObjectStore {
  /** A name for messages: `s3://bucket/prefix`. */
  readonly where: string;
  /**
   * Creates (or replaces) the object `key` with `body`. `ifAbsent`: a conditional create; resolves
   * false, changing nothing, when the object exists already (true otherwise).
   */
  put(key: string, body: Buffer, opts?: { ifAbsent?: boolean }): Promise<boolean>;
  /** Uploads `bytes` bytes of the local file at `path` (in parts when it is large). */
  putFile(key: string, path: string, bytes: number): Promise<void>;
  /** The object's bytes [start, end) (whole object without a range); null when it does not exist. */
  get(key: string, range?: { start: number; end: number }): Promise<Buffer | null>;
  /** Removes the object (no error when it is gone already). */
  delete(key: string): Promise<void>;
}

/** Joins key parts with single slashes. */
export function objectKey(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/').replace(/\/+/g, '/');
}
