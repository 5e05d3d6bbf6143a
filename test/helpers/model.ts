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

/** mulberry32: a small seeded PRNG, so a failing run replays exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const v = (rand() * 4294967296) >>> 0;
    b[i] = v & 0xff;
    if (i + 1 < n) b[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < n) b[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < n) b[i + 3] = v >>> 24;
  }
  return b;
}
