// An in-memory object store for the tier's tests, with faults injected from a seeded generator:
// throttling (503 SlowDown, as an S3 service answers), a request failing after it took effect (the
// answer lost), and whole-object damage.
import { readFileSync } from 'node:fs';
import type { ObjectStore } from '../../src/tier/object-store.js';

export class ThrottledError extends Error {
  readonly name = 'SlowDown';
  readonly $metadata = { httpStatusCode: 503 };
}

export class MemoryObjectStore implements ObjectStore {
  readonly where = 's3://memory/tier';
  readonly objects = new Map<string, Buffer>();
  readonly log: string[] = [];
  /** Probability of a fault per request, and the generator that decides. */
  faultRate = 0;
  random: () => number = Math.random;
  faults = 0;

  private fault(op: string, key: string, effect: () => void): void {
    if (this.faultRate > 0 && this.random() < this.faultRate) {
      this.faults++;
      // Half the faults happen after the request took effect (the answer is lost on the way back).
      if (this.random() < 0.5) effect();
      throw new ThrottledError(`injected 503 SlowDown on ${op} ${key}`);
    }
    effect();
  }

  async put(key: string, body: Buffer, opts: { ifAbsent?: boolean } = {}): Promise<boolean> {
    await Promise.resolve();
    let created = true;
    this.fault('put', key, () => {
      if (opts.ifAbsent && this.objects.has(key)) created = false;
      else this.objects.set(key, Buffer.from(body));
    });
    this.log.push(`put ${key}`);
    return created;
  }

  async putFile(key: string, path: string, bytes: number): Promise<void> {
    const data = readFileSync(path).subarray(0, bytes);
    await Promise.resolve();
    this.fault('putFile', key, () => this.objects.set(key, Buffer.from(data)));
    this.log.push(`put ${key}`);
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Buffer | null> {
    await Promise.resolve();
    let out: Buffer | null = null;
    this.fault('get', key, () => {
      const o = this.objects.get(key);
      out = o ? Buffer.from(range ? o.subarray(range.start, range.end) : o) : null;
    });
    return out;
  }

  async delete(key: string): Promise<void> {
    await Promise.resolve();
    this.fault('delete', key, () => this.objects.delete(key));
    this.log.push(`delete ${key}`);
  }
}
