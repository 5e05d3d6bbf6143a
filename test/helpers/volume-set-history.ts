// A store of three volumes with a known history, for group restore and bisect tests: random writes
// over the set with a manual clock one second apart ending an hour ago, windows closed every
// `windowWrites` writes and applied, the last few writes journaled but not applied (as a running
// `rewind serve` leaves them), then closed. `model.at(volume, seq)` is each volume after any write.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initStore, ManualClock, Store } from '../../src/index.js';
import { Model, prng, randomBytes } from './model.js';

export const SET_VOLUMES = [{ name: 'db', size: 256 * 1024 }, { name: 'logs', size: 128 * 1024 }, { name: 'cfg', size: 64 * 1024 }];

export interface VolumeSetHistory {
  dir: string;
  model: Model;
  /** Time of each write (index: seq). */
  timeOfSeq: number[];
  /** Last seq of each applied window (index: tx id - 1). */
  windowEnds: number[];
  lastSeq: number;
  remove(): void;
}

export interface VolumeSetOptions {
  writes?: number;
  windowWrites?: number;
  /** Writes after the last applied window, journaled only. */
  unapplied?: number;
  seed?: number;
  /** Called for each write before it is made: a test may replace the data (e.g. plant a bad write). */
  shape?: (seq: number, w: { volume: string; offset: number; data: Buffer }) => void;
}

export async function volumeSetHistory(opts: VolumeSetOptions = {}): Promise<VolumeSetHistory> {
  const writes = opts.writes ?? 60;
  const windowWrites = opts.windowWrites ?? 10;
  const unapplied = opts.unapplied ?? 5;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-set-'));
  const dir = path.join(root, 'store');
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
  const clock = new ManualClock(t0);
  await initStore(dir, { volumes: SET_VOLUMES, window: 'marker', blockSize: 4096, clock });
  const store = await Store.open(dir, { clock, threads: 1 });
  const model = new Model(Object.fromEntries(SET_VOLUMES.map((v) => [v.name, v.size])));
  const timeOfSeq = [t0];
  const windowEnds: number[] = [];
  const rand = prng(opts.seed ?? 11);
  try {
    for (let seq = 1; seq <= writes; seq++) {
      clock.advance(1000);
      const v = SET_VOLUMES[Math.floor(rand() * SET_VOLUMES.length)];
      const len = 1 + Math.floor(rand() * 9000);
      const w = { volume: v.name, offset: Math.floor(rand() * (v.size - len)), data: randomBytes(rand, len) };
      opts.shape?.(seq, w);
      expect(await store.write(w.volume, w.offset, w.data), seq);
      model.add({ seq, volume: w.volume, offset: w.offset, data: Buffer.from(w.data), time: clock.now() });
      timeOfSeq.push(clock.now());
      if (seq % windowWrites === 0 && seq <= writes - unapplied) {
        store.markWindow();
        await store.settle();
        windowEnds.push(seq);
      }
    }
    // No flush: under the marker policy a flush ends a window, whose apply would then race the abort
    // below. The tail's records are in the journal file (page cache) for readers all the same.
  } finally {
    // An unclean stop keeps the unapplied tail unapplied, as a running writer would have it.
    await store.abort();
  }
  return { dir, model, timeOfSeq, windowEnds, lastSeq: writes, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}

function expect(got: number, want: number): void {
  if (got !== want) throw new Error(`write got seq ${got}, expected ${want}`);
}
