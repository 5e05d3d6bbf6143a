// What `rewind serve` exports over NBD: each production volume read-write (writes are captured
// into the journal), and any past point of a volume read-only: "<volume>@seq=<N>" and
// "<volume>@time=<ISO>" are point-in-time views, kept correct while new windows are applied. Each
// clone is exported read-write under its name (looked up when a client picks the export, so a clone
// created while serve runs is there): its writes go to its overlay, never to the volume or history.
//
// The NBD server takes reads and writes up to 64 MiB, the store up to its writeBytesMax (32 MiB):
// a longer write becomes consecutive store writes issued in one go, so no other write comes
// between them and the history is exact again at the last one (a view of a sequence number inside
// the request shows its first pieces only). A longer read is read in pieces into one buffer.
// Block status (base:allocation, qemu:dirty-bitmap:rewind-since-seq-N) is meta-contexts.ts's.
import type { ExportProvider, NbdExport, OpenOptions } from '../nbd/export.js';
import { offeredContexts, withMetaContexts, type ContextSubject } from './meta-contexts.js';
import type { CloneHandle } from '../clones/clone-set.js';
import type { Store } from '../store/store.js';
import { parseTime } from '../units.js';
import type { Volume } from '../volumes/volume-set.js';
import { viewExport } from './view-export.js';
import { badArgument, exportUnavailable, unknownExport } from '../errors.js';

const VIEW_NAME = /^(.+)@(seq|time)=(.+)$/;

export class StoreExports implements ExportProvider {
  private readonly zeroes: Buffer;

  constructor(private readonly store: Store) {
    this.zeroes = Buffer.alloc(Math.min(store.limits.writeBytesMax, 4 * 2 ** 20));
  }

  list(): { name: string; description?: string }[] {
    const volumes = this.store.volumes.volumes.map((v) => ({ name: v.name, description: `rewind volume ${v.name} (past points: ${v.name}@seq=<N>, ${v.name}@time=<ISO>)` }));
    const clones = this.store.clones.records().map((c) => ({ name: c.name, description: `rewind clone of ${c.volume} at seq ${c.seq} (writable; its writes stay in the clone)` }));
    return [...volumes, ...clones];
  }

  open(name: string, opts?: OpenOptions): NbdExport | Promise<NbdExport> {
    const m = VIEW_NAME.exec(name);
    const volumeName = m ? m[1] : name;
    const v = this.store.volumes.volumes.find((x) => x.name === volumeName);
    if (!v) {
      // A clone offers base:allocation only (metaContexts), which the NBD layer answers "allocated".
      if (!m && this.store.clones.exists(name)) return this.cloneExport(name);
      throw unknownExport(name, [...this.store.volumes.names(), ...this.store.clones.records().map((c) => c.name)]);
    }
    const exp = m ? this.viewExport(name, v, m[2] as 'seq' | 'time', m[3]) : this.volumeExport(v);
    const contexts = opts?.metaContexts ?? [];
    if (contexts.length === 0) return exp;
    try {
      const subject = this.subjectOf(name)!;
      return withMetaContexts(exp, subject, contexts, () => subject.pointSeq ?? this.store.lastSeq);
    } catch (err) {
      void exp.close();
      throw exportUnavailable(name, err);
    }
  }

  metaContexts(name: string, queries: readonly string[] | null, mode: 'list' | 'set'): string[] | null {
    const subject = this.subjectOf(name);
    if (subject) return offeredContexts(subject, queries, mode);
    // A clone is an export too (null would tell the client there is no such export): base:allocation
    // only, since its own writes are not history a dirty bitmap could be drawn from.
    return !VIEW_NAME.test(name) && this.store.clones.exists(name) ? [] : null;
  }

  /** The volume or view an export name stands for (null: no such volume), without opening it. */
  private subjectOf(name: string): ContextSubject | null {
    const m = VIEW_NAME.exec(name);
    const v = this.store.volumes.volumes.find((x) => x.name === (m ? m[1] : name));
    if (!v) return null;
    let pointSeq: number | null = null;
    if (m) {
      try {
        pointSeq = m[2] === 'seq' ? this.store.history.resolve({ seq: parseSeq(m[3]) }) : this.store.history.resolve({ time: parseTime(decodeURIComponent(m[3])) });
      } catch (err) {
        throw exportUnavailable(name, err);
      }
    }
    return { history: this.store.history, volume: v.name, pointSeq };
  }

  private async cloneExport(name: string): Promise<NbdExport> {
    let handle: CloneHandle;
    try {
      handle = await this.store.clones.acquire(name);
    } catch (err) {
      throw exportUnavailable(name, err);
    }
    const c = handle.clone;
    return {
      name,
      size: c.size,
      readOnly: false,
      canTrim: true,
      // One overlay per process, shared by every connection: a flush anywhere covers them all.
      canMultiConn: true,
      read: (offset, length) => c.read(offset, length),
      write: (offset, data, fua) => {
        c.write(offset, data);
        return fua ? c.flush() : undefined;
      },
      writeZeroes: (offset, length, fua) => {
        c.writeZeroes(offset, length);
        return fua ? c.flush() : undefined;
      },
      // A hint, as for volumes: the blocks stay as they are.
      trim() {},
      flush: () => c.flush(),
      close: () => handle.close(),
    };
  }

  private volumeExport(v: Volume): NbdExport {
    const store = this.store;
    const zeroes = this.zeroes;
    return {
      name: v.name,
      size: v.size,
      readOnly: false,
      canTrim: true,
      // One journal for every connection: a flush anywhere makes every acknowledged write durable.
      canMultiConn: true,
      read: (offset, length) => (length <= store.limits.writeBytesMax ? store.read(v.name, offset, length) : readInPieces(store, v.name, offset, length)),
      write(offset, data, fua) {
        if (data.byteLength > store.limits.writeBytesMax) {
          return writeInPieces(store, v.name, offset, data).then(() => (fua ? store.flush() : undefined));
        }
        // Journaled with the other writes of this socket read (one vectored write); the server keeps
        // `data` untouched until the promise settles.
        const captured = store.writeBatched(v.name, offset, data);
        // The server ignores what a write resolves with: the seq is not worth a second promise.
        return fua ? captured.then(() => store.flush()) : (captured as Promise<unknown> as Promise<void>);
      },
      async writeZeroes(offset, length, fua) {
        // Zeroes are history too: journaled as writes, in pieces no larger than the write limit.
        for (let at = 0; at < length; at += zeroes.byteLength) {
          await store.write(v.name, offset + at, zeroes.subarray(0, Math.min(zeroes.byteLength, length - at)));
        }
        if (fua) await store.flush();
      },
      // Trim is a hint (the protocol lets a server ignore it); the data stays, so history stays exact.
      trim() {},
      flush: () => store.flush(),
      close() {},
    };
  }

  private viewExport(name: string, v: Volume, kind: 'seq' | 'time', arg: string): NbdExport {
    let seq: number;
    try {
      seq = kind === 'seq' ? parseSeq(arg) : this.store.history.resolve({ time: parseTime(decodeURIComponent(arg)) });
      return viewExport(this.store.history, name, v.name, seq);
    } catch (err) {
      throw exportUnavailable(name, err);
    }
  }
}

function parseSeq(text: string): number {
  if (!/^\d+$/.test(text)) throw badArgument(`"${text}" is not a sequence number`);
  return Number(text);
}

/**
 * One write longer than the store's limit, as store writes of at most that limit, all called now:
 * they are captured (or queue to be captured) in order, one after another. If one fails, the
 * request fails; the pieces that succeeded stay in the history, as NBD allows for a failed write.
 */
function writeInPieces(store: Store, volume: string, offset: number, data: Buffer): Promise<unknown> {
  const max = store.limits.writeBytesMax;
  const pieces: Promise<number>[] = [];
  for (let at = 0; at < data.byteLength; at += max) {
    pieces.push(store.write(volume, offset + at, data.subarray(at, Math.min(data.byteLength, at + max))));
  }
  return Promise.all(pieces);
}

function readInPieces(store: Store, volume: string, offset: number, length: number): Buffer {
  const max = store.limits.writeBytesMax;
  const out = Buffer.allocUnsafe(length);
  for (let at = 0; at < length; at += max) store.read(volume, offset + at, Math.min(max, length - at)).copy(out, at);
  return out;
}
