// The NBD metadata contexts `rewind serve` offers on a volume or a view (proto.md "Metadata
// querying"; qemu's docs/interop/nbd.rst for the `qemu:dirty-bitmap:` namespace):
//
//   base:allocation                        every block allocated, contents unknown (flags 0): rewind
//                                          keeps every block of a volume and does not track holes
//   qemu:dirty-bitmap:rewind-since-seq-N   flag 1 (dirty) on the blocks written after seq N up to
//                                          the export's point, 0 elsewhere: a view's seq, or for a
//                                          volume the newest write when the client asks
//
// so `nbdinfo --map=qemu:dirty-bitmap:rewind-since-seq-N` and qemu's incremental backup readers see
// exactly the blocks written after N (restore/diff.ts: block-granular, never a changed byte missed).
// N must be a point the store holds, at or before the export's point: otherwise the option is
// refused with the message a restore would give. The point N is leased while the connection lasts.
import { badArgument } from '../errors.js';
import type { BlockStatusExtent, NbdExport } from '../nbd/export.js';
import { NBD_LIMITS } from '../nbd/constants.js';
import type { ChangesSince, Extent } from '../restore/diff.js';
import type { History } from '../restore/history.js';
import { oldestHeld } from '../lifecycle/held.js';
import { lowerBound } from '../sorted.js';

export const SINCE_SEQ_PREFIX = 'qemu:dirty-bitmap:rewind-since-seq-';
const SINCE_SEQ = /^qemu:dirty-bitmap:rewind-since-seq-(0|[1-9]\d{0,15})$/;
/** The qemu dirty-bitmap flag. */
const DIRTY = 1;

/** N of `qemu:dirty-bitmap:rewind-since-seq-N`, or null for any other name. */
export function sinceSeqOf(name: string): number | null {
  const m = SINCE_SEQ.exec(name);
  return m ? Number(m[1]) : null;
}

/** A volume (pointSeq: null, the live volume) or a view (its seq) whose contexts are asked for. */
export interface ContextSubject {
  readonly history: History;
  readonly volume: string;
  readonly pointSeq: number | null;
}

/**
 * ExportProvider.metaContexts for one subject: the names (other than base:) it offers matching the
 * queries. Listing everything or the `qemu:` / `qemu:dirty-bitmap:` wildcards gives the widest
 * bitmap, since the oldest point held (any held N works).
 */
export function offeredContexts(subject: ContextSubject, queries: readonly string[] | null, mode: 'list' | 'set'): string[] {
  const widest = () => `${SINCE_SEQ_PREFIX}${oldestHeld(subject.history.held.state())}`;
  if (queries === null) return [widest()];
  const out: string[] = [];
  for (const q of queries) {
    if (mode === 'list' && (q === 'qemu:' || q === 'qemu:dirty-bitmap:')) out.push(widest());
    const seq = sinceSeqOf(q);
    if (seq === null) continue; // not ours: ignored, as proto.md asks
    checkSince(subject, seq);
    out.push(q);
  }
  return out;
}

/** N is held, and not after the export's point. Throws the error to tell the client. */
function checkSince(subject: ContextSubject, seq: number): void {
  openSince(subject, seq).close();
}

/** The changes since N, leased; N checked as checkSince says. */
function openSince(subject: ContextSubject, seq: number): ChangesSince {
  if (subject.pointSeq !== null && seq > subject.pointSeq) {
    throw badArgument(`${SINCE_SEQ_PREFIX}${seq}: seq ${seq} is after the point of this view (seq ${subject.pointSeq})`);
  }
  return subject.history.changesSince(subject.volume, { seq });
}

/** Block status of the changed extents (sorted, merged) over [offset, offset + length): dirty and clean runs. */
export function dirtyStatus(extents: readonly Extent[], offset: number, length: number): BlockStatusExtent[] {
  const end = offset + length;
  const out: BlockStatusExtent[] = [];
  let i = lowerBound(extents, (e) => e.offset + e.length > offset);
  let at = offset;
  while (at < end && out.length < NBD_LIMITS.blockStatusExtentsMax) {
    const e = extents[i];
    if (e === undefined || e.offset >= end) {
      out.push({ length: end - at, flags: 0 });
      break;
    }
    if (e.offset > at) {
      out.push({ length: e.offset - at, flags: 0 });
      at = e.offset;
      continue;
    }
    const to = Math.min(end, e.offset + e.length);
    out.push({ length: to - at, flags: DIRTY });
    at = to;
    i++;
  }
  return out;
}

/**
 * The export with block status for the contexts the client selected (base:allocation and dirty
 * bitmaps); their leases end when the export is closed. `pointSeq`: the export's point now.
 */
export function withMetaContexts(exp: NbdExport, subject: ContextSubject, contexts: readonly string[], pointSeq: () => number): NbdExport {
  if (contexts.length === 0) return exp;
  const bitmaps = new Map<string, ChangesSince>();
  try {
    for (const name of contexts) {
      const seq = sinceSeqOf(name);
      if (seq !== null) bitmaps.set(name, openSince(subject, seq));
    }
  } catch (err) {
    for (const b of bitmaps.values()) b.close();
    throw err;
  }
  return {
    name: exp.name,
    size: exp.size,
    readOnly: exp.readOnly,
    canTrim: exp.canTrim,
    canMultiConn: exp.canMultiConn,
    read: (offset, length) => exp.read(offset, length),
    write: (offset, data, fua) => exp.write(offset, data, fua),
    writeZeroes: (offset, length, fua) => exp.writeZeroes(offset, length, fua),
    trim: (offset, length, fua) => exp.trim(offset, length, fua),
    flush: () => exp.flush(),
    blockStatus(context, offset, length) {
      const changes = bitmaps.get(context);
      if (!changes) return [{ length, flags: 0 }]; // base:allocation
      return dirtyStatus(changes.extents(pointSeq()), offset, length);
    },
    close() {
      for (const b of bitmaps.values()) b.close();
      return exp.close();
    },
  };
}
