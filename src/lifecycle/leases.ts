// Leases of readers in other processes (`rewind restore` while `rewind serve` runs): a file per lease in
// `<store>/leases/`, named `<pid>-<n>.lease`, holding the point the reader reads. The writer's lifecycle
// reads them with its own leases before a step and again before it removes a file, and leaves alone
// what a lease still needs. A reader takes its lease before it looks at the catalog for the last time
// (it checks the point is held after taking it), so a step either saw the lease or finished before the
// reader looked. Leases of processes that no longer run are removed by the writer.
//
// lease file (JSON, written under a temporary name and renamed): {"seq": N, "pid": P}
import { assert } from '../errors.js';
import { processAlive } from '../lock.js';
import { joinPath, readWholeFile, replaceFileSync, type Storage } from '../storage/storage.js';

export const LEASES_DIR = 'leases';
const NAME = /^(\d+)-(\d+)\.lease$/;
/** Leases one reader process holds at most (each open view or restore holds one). */
export const LEASES_PER_PROCESS_MAX = 4096;

let counter = 0;

export class LeaseFiles {
  private held = 0;
  constructor(private readonly storage: Storage, private readonly storeDir: string) {}

  private get dir(): string {
    return joinPath(this.storeDir, LEASES_DIR);
  }

  /** Takes a lease on the point after write `seq`; returns the function that ends it. */
  take(seq: number): () => void {
    assert(this.held < LEASES_PER_PROCESS_MAX, `a reader holds at most ${LEASES_PER_PROCESS_MAX} leases`);
    this.storage.mkdirp(this.dir);
    const path = joinPath(this.dir, `${process.pid}-${++counter}.lease`);
    // Synchronous and without fsync: a lease matters only while this process runs.
    replaceFileSync(this.storage, path, Buffer.from(JSON.stringify({ seq, pid: process.pid })));
    this.held++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.held--;
      try {
        this.storage.remove(path);
      } catch {
        // already gone (the writer removes leases of processes it takes for dead)
      }
    };
  }

  /** The points leased by live processes; leases of dead ones are removed. */
  points(): number[] {
    if (!this.storage.exists(this.dir)) return [];
    const out: number[] = [];
    for (const name of this.storage.list(this.dir)) {
      const m = NAME.exec(name);
      if (!m) continue;
      const path = joinPath(this.dir, name);
      if (!processAlive(Number(m[1]))) {
        try {
          this.storage.remove(path);
        } catch {
          // removed meanwhile
        }
        continue;
      }
      try {
        const seq = (JSON.parse(readWholeFile(this.storage, path).toString('utf8')) as { seq?: unknown }).seq;
        if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) out.push(seq);
      } catch {
        // ended meanwhile
      }
    }
    return out;
  }
}
