// A store whose retention policy has retired part of its history, built with a manual clock for the
// tests of `log` and of restores at points no longer held. Policy `writes:1m,windows:2m,hourly:1d`,
// windows of 4 writes of one block each, journal segments of exactly one window each (so retiring
// the journal of a window is exact). Sixteen windows, by the time `end`:
//
//   windows 1-3    26 h before the hourly span            older than a day: dropped (3's end stays, the oldest point)
//   windows 4-12   three per UTC hour, 3 hours back       hourly: merged into one pack per hour (4-6, 7-9, 10-12)
//   windows 13-14  100 s and 80 s before `end`            windows tier: their ends held
//   windows 15-16  30 s and 10 s before `end`             writes tier: every write held
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initStore, ManualClock, Store } from '../../src/index.js';
import { Model, prng } from './model.js';

export const RETAIN = 'writes:1m,windows:2m,hourly:1d';
export const BLOCK = 4096;
export const VOLUME = 'a';
export const VOLUME_BYTES = 16 * BLOCK;
const HOUR = 3_600_000;
const MINUTE = 60_000;
/** One window's four records (48-byte headers) fill a segment after its 64-byte header exactly. */
export const SEGMENT_BYTES = 64 + 4 * (48 + BLOCK);

export interface RetiredHistory {
  dir: string;
  clock: ManualClock;
  model: Model;
  /** The time of each window's first write, by transaction id (index 0 unused). */
  windowStart: number[];
  /** The seq ending window `id` is 4 × id. */
  windowEnd(id: number): number;
  /** The writer, still open (close it to run the command line on the store). */
  store: Store;
}

/** Builds the store under a new temporary directory; `end` is the clock when it is done (it stays there). */
export async function retiredHistory(end: number, seed = 7): Promise<RetiredHistory> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-retired-'));
  const dir = path.join(root, 'store');
  // The last of the three hours ends at least 5 minutes before `end`: a period is merged only once
  // every window of it has left the windows tier (2 minutes), whatever minute of the hour `end` is.
  const H0 = Math.floor((end - 5 * MINUTE) / HOUR) * HOUR - 3 * HOUR;
  const T0 = H0 - 26 * HOUR;
  const clock = new ManualClock(T0);
  await initStore(dir, { volumes: [{ name: VOLUME, size: VOLUME_BYTES }], window: 'count:4', retain: RETAIN, clock });
  const store = await Store.open(dir, { clock, threads: 1, autoTick: false, limits: { segmentBytesMax: SEGMENT_BYTES } });
  const model = new Model({ [VOLUME]: VOLUME_BYTES });
  const rand = prng(seed);
  const windowStart = [NaN];
  for (let k = 1; k <= 3; k++) windowStart.push(T0 + k * MINUTE);
  for (let k = 0; k < 9; k++) windowStart.push(H0 + 5 * MINUTE + k * 20 * MINUTE);
  windowStart.push(end - 100_000, end - 80_000, end - 30_000, end - 10_000);
  for (let id = 1; id < windowStart.length; id++) {
    clock.set(Math.max(clock.now(), windowStart[id]));
    for (let i = 0; i < 4; i++) {
      const offset = Math.floor(rand() * 16) * BLOCK;
      const data = Buffer.alloc(BLOCK, (id * 16 + i) & 0xff);
      data.writeUInt32LE(id * 100 + i, Math.floor(rand() * (BLOCK / 4)) * 4);
      const time = clock.now();
      const seq = await store.write(VOLUME, offset, data);
      model.add({ seq, volume: VOLUME, offset, data, time });
      clock.advance(1000);
    }
    // count:4 has closed the window; applying it starts a lifecycle pass at this clock.
    await store.drain();
  }
  clock.set(end);
  await store.consolidate();
  return { dir, clock, model, windowStart, windowEnd: (id) => 4 * id, store };
}
