// NBD_CMD_BLOCK_STATUS: asks the export for each selected metadata context and shapes its answer
// into what proto.md allows in a reply chunk: consecutive extents from the request's offset, each at
// least 1 byte, none past the request's end (the protocol lets the last one pass it; clipping is
// always valid), consecutive extents with the same flags merged, at most
// NBD_LIMITS.blockStatusExtentsMax of them (the client asks again from where the reply stops), and
// exactly one with NBD_CMD_FLAG_REQ_ONE. `base:allocation` is answered "allocated, contents unknown"
// (flags 0: always true) by an export that does not answer it.
import { assert } from '../errors.js';
import { NBD_LIMITS } from './constants.js';
import type { BlockStatusExtent, NbdExport } from './export.js';
import { BASE_ALLOCATION } from './meta-context.js';

/** The extents of one context, with its id (index in the selection + 1). */
export interface ContextStatus {
  readonly id: number;
  readonly extents: readonly BlockStatusExtent[];
}

/** An export's extents for a request of `length` bytes, shaped for one reply chunk. */
export function shapeExtents(extents: readonly BlockStatusExtent[], length: number, reqOne: boolean, max: number = NBD_LIMITS.blockStatusExtentsMax): BlockStatusExtent[] {
  const out: { length: number; flags: number }[] = [];
  let covered = 0;
  for (const e of extents) {
    assert(Number.isSafeInteger(e.length) && e.length > 0, `an export's block-status extent is at least one byte (got ${e.length})`);
    const flags = e.flags >>> 0;
    const len = Math.min(e.length, length - covered);
    const last = out[out.length - 1];
    if (last !== undefined && last.flags === flags) last.length += len;
    else if (out.length === max || (reqOne && out.length === 1)) break;
    else out.push({ length: len, flags });
    covered += len;
    if (covered === length) break;
  }
  assert(out.length > 0, 'an export answers block status with at least one extent');
  return out;
}

/** The status of [offset, offset + length) in every selected context, in selection order. */
export function blockStatus(exp: NbdExport, contexts: readonly string[], offset: number, length: number, reqOne: boolean): ContextStatus[] | Promise<ContextStatus[]> {
  const answers = contexts.map((name) => {
    if (exp.blockStatus) return exp.blockStatus(name, offset, length);
    assert(name === BASE_ALLOCATION, `an export without blockStatus was opened with only ${BASE_ALLOCATION} (got ${name})`);
    return [{ length, flags: 0 }];
  });
  const shape = (all: (readonly BlockStatusExtent[])[]) => all.map((extents, i) => ({ id: i + 1, extents: shapeExtents(extents, length, reqOne) }));
  if (answers.every((a) => Array.isArray(a))) return shape(answers as (readonly BlockStatusExtent[])[]);
  return Promise.all(answers).then(shape);
}
