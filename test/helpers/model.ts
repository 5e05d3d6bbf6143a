// The reference model for engine tests: every write in order, and the plain contents of each
// volume after any write, computed by replaying the writes onto zeroed buffers. Nothing clever:
// it is what the engine must agree with.

export interface ModelWrite {
  seq: number;
  volume: string;
  offset: number;
  data: Buffer;
  time: number;
}

export class Model {
  readonly writes: ModelWrite[] = [];
  constructor(readonly sizes: Record<string, number>) {}

  add(w: ModelWrite): void {
    const prev = this.writes[this.writes.length - 1];
    if (w.seq !== (prev?.seq ?? 0) + 1) throw new Error(`model: seq ${w.seq} after ${prev?.seq ?? 0}`);
    this.writes.push({ ...w, data: Buffer.from(w.data) });
  }

  get lastSeq(): number {
    return this.writes.length;
  }

  /** A cursor that walks forward through the history (cheap for ascending targets). */
  cursor(): ModelCursor {
    return new ModelCursor(this);
  }

  /** The volume after write `seq`. */
  at(volume: string, seq: number): Buffer {
    const c = this.cursor();
    c.advanceTo(seq);
    return Buffer.from(c.volume(volume));
  }

  /** The last seq stamped at or before `time`. */
  seqAtTime(time: number): number {
    let s = 0;
    for (const w of this.writes) if (w.time <= time) s = w.seq;
    return s;
  }
}

export class ModelCursor {
  private seq = 0;
  private readonly images: Record<string, Buffer> = {};
  constructor(private readonly model: Model) {
    for (const [name, size] of Object.entries(model.sizes)) this.images[name] = Buffer.alloc(size);
  }
  advanceTo(seq: number): void {
    if (seq < this.seq) throw new Error(`model cursor cannot go back from ${this.seq} to ${seq}`);
    for (; this.seq < seq; this.seq++) {
      const w = this.model.writes[this.seq];
      w.data.copy(this.images[w.volume], w.offset);
    }
  }
  volume(name: string): Buffer {
    return this.images[name];
  }
}

export { prng, randomBytes } from '../../src/prng.js';
