// Messages between the scheduler and the kernel pool's workers. All pointers are byte offsets into
// the one shared memory, into the regions src/kernels/layout.ts declares; a task carries only these numbers.

export interface CoalesceTask {
  kind: 'coalesce';
  /** Fragment table: `count` entries of FRAGMENT_BYTES, u32 (dst, src, len), applied in order. */
  table: number;
  count: number;
}

export interface BuildTask {
  kind: 'build';
  table: number;
  count: number;
  blockCount: number;
  blockSize: number;
  oldBlocks: number;
  /** The chunk's new blocks, whose CRC32Cs the worker writes into the forward table; 0: the scheduler wrote them. */
  newBlocks: number;
  /** Section body (block-encoding.ts sectionLayout): block numbers already written here by the scheduler; the worker writes the rest. */
  out: number;
}

export interface DecodeTask {
  kind: 'decode';
  enc: number;
  encLen: number;
  offsets: number;
  blockCount: number;
  dst: number;
  blockSize: number;
  xorMode: 0 | 1;
}

/** Checks payloads against their CRC32C: record table entries of u32 (ptr, len, crc); returns the first bad index or -1. */
export interface VerifyTask {
  kind: 'verify';
  table: number;
  from: number;
  count: number;
}

/**
 * Reads runs of a file into shared memory: `runs` holds triples (file position, destination pointer,
 * length). Bytes past the end of the file read as zeros (a sparse or shorter file).
 */
export interface ReadRunsTask {
  kind: 'readRuns';
  fd: number;
  runs: number[];
}

/** Writes runs of shared memory to a file: `runs` holds triples (file position, source pointer, length). */
export interface WriteRunsTask {
  kind: 'writeRuns';
  fd: number;
  runs: number[];
}

export type PoolTask = CoalesceTask | BuildTask | DecodeTask | VerifyTask | ReadRunsTask | WriteRunsTask;

/** What an I/O task returns when the system call failed (errors are returned, not thrown, to keep their code). */
export interface IoFailure {
  ioError: { code: string; message: string };
}

export interface BuildResult {
  fwdBytes: number;
  bwdBytes: number;
  bodyCrc: number;
}
