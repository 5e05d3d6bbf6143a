// Bringing production to the journal on open (src/store/rebuild.ts, src/store/dirty-regions.ts):
// after a kill only the regions written since the applied point, and those of records cut off the
// journal, are taken from the replica; after a power loss, or when the dirty-region log asks for it,
// every volume is rebuilt in full. A byte planted in production where no write went tells the two
// apart: a region rebuild leaves it, a full one takes it away.
import { describe, expect, it } from 'vitest';
import { initStore, ManualClock, Store } from '../../src/index.js';
import { encodeRecordHeader, RECORD_HEADER_BYTES } from '../../src/journal/record.js';
import {
  addDirtyRegions, cutExtents, decodeDirtyLog, DIRTY_LOG_FILE, encodeDirtyLog, mergeExtents, readDirtyLog,
} from '../../src/store/dirty-regions.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { SimStorage } from '../sim/sim-storage.js';

const DIR = '/store';
const SIZE = 1 << 20;
const PLANT = SIZE - 1000; // no write below goes there

async function killedStore(seed: number) {
  const storage = new SimStorage({ seed });
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  await initStore(DIR, { storage, clock, window: 'count:8', volumes: [{ name: 'v', size: SIZE }] });
  const open = (unclean: boolean, sameBoot: boolean, onWarning?: (m: string) => void) =>
    Store.open(DIR, { storage, clock, threads: 1, autoTick: false, onWarning, lock: () => ({ unclean, sameBoot, release() {} }) });
  const store = await open(false, false);
  const model = new Model({ v: SIZE });
  const rand = prng(seed);
  const write = async () => {
    const len = 1 + Math.floor(rand() * 6000);
    const offset = Math.floor(rand() * (PLANT - len));
    const data = randomBytes(rand, len);
    clock.advance(1);
    model.add({ seq: model.lastSeq + 1, volume: 'v', offset, data, time: clock.now() });
    await store.write('v', offset, data);
  };
  for (let i = 0; i < 40; i++) await write();
  await store.settle();
  for (let i = 0; i < 5; i++) await write(); // in flight: not applied when the process dies
  await store.flush();
  storage.kill();
  await store.abort().catch(() => {});
  // A stray byte where no write went: only a rebuild in full takes it away.
  const f = storage.open(`${DIR}/volumes/v`, 'write');
  f.write(Buffer.from([0xee]), PLANT);
  f.close();
  return { storage, model, open };
}

describe('production after a crash', () => {
  it('after a kill, takes from the replica only the regions written since the applied point', async () => {
    const { storage, model, open } = await killedStore(1);
    const warnings: string[] = [];
    const store = await open(true, true, (m) => warnings.push(m));
    const prod = storage.readFile(`${DIR}/volumes/v`);
    expect(prod[PLANT]).toBe(0xee);
    prod[PLANT] = 0;
    expect(prod.equals(model.at('v', model.lastSeq))).toBe(true);
    expect(warnings.filter((w) => w.includes('in full'))).toEqual([]);
    await store.close();
  });

  it('after a power loss (another boot), rebuilds every volume in full and says so', async () => {
    const { storage, model, open } = await killedStore(2);
    const warnings: string[] = [];
    const store = await open(true, false, (m) => warnings.push(m));
    expect(storage.readFile(`${DIR}/volumes/v`).equals(model.at('v', model.lastSeq))).toBe(true);
    expect(warnings.some((w) => /rebuilding production from the replica in full: the machine restarted/.test(w))).toBe(true);
    await store.close();
  });

  it('undoes the writes of records cut off the journal, which production took', async () => {
    const { storage, model, open } = await killedStore(3);
    // Production took a write whose record then went bad; the good record after it is cut off too.
    const seg = storage.list(`${DIR}/journal`).filter((n) => n.endsWith('-open.seg')).at(-1)!;
    const segPath = `${DIR}/journal/${seg}`;
    const end = storage.readFile(segPath).byteLength;
    const rand = prng(9);
    const strays: { offset: number; data: Buffer }[] = [];
    const f = storage.open(segPath, 'write');
    const prodFile = storage.open(`${DIR}/volumes/v`, 'write');
    let at = end;
    for (let i = 0; i < 2; i++) {
      const data = randomBytes(rand, 3000);
      const offset = 4096 * (10 + i * 50);
      const header = Buffer.alloc(RECORD_HEADER_BYTES);
      encodeRecordHeader(header, { seq: model.lastSeq + 1 + i, time: Date.UTC(2026, 0, 2), volume: 0, offset, length: data.byteLength, payloadCrc: i === 0 ? 1 : 0 });
      f.writev([header, data], at);
      at += RECORD_HEADER_BYTES + data.byteLength;
      prodFile.write(data, offset);
      strays.push({ offset, data });
    }
    f.close();
    prodFile.close();
    const store = await open(true, true);
    expect(store.lastSeq).toBe(model.lastSeq);
    const prod = storage.readFile(`${DIR}/volumes/v`);
    expect(prod[PLANT]).toBe(0xee); // still a region rebuild
    prod[PLANT] = 0;
    expect(prod.equals(model.at('v', model.lastSeq))).toBe(true);
    expect(storage.exists(`${DIR}/${DIRTY_LOG_FILE}`)).toBe(false);
    expect(storage.list(`${DIR}/journal`).some((n) => n.startsWith(`${seg}.cut-`))).toBe(true);
    await store.close();
  });

  it('rebuilds in full when the dirty-region log asks for it, even after a kill', async () => {
    const { storage, model, open } = await killedStore(4);
    await addDirtyRegions(storage, DIR, { all: true, extents: [] });
    const store = await open(true, true);
    expect(storage.readFile(`${DIR}/volumes/v`).equals(model.at('v', model.lastSeq))).toBe(true);
    expect(readDirtyLog(storage, DIR)).toBeNull();
    await store.close();
  });
});

describe('the dirty-region log', () => {
  it('round-trips, and a damaged one asks for everything', () => {
    const d = { all: false, extents: [{ volume: 3, offset: 2 ** 40 + 512, length: 32 * 2 ** 20 }, { volume: 0, offset: 0, length: 1 }] };
    const buf = encodeDirtyLog(d);
    expect(decodeDirtyLog(buf)).toMatchObject(d);
    buf[20] ^= 1;
    expect(decodeDirtyLog(buf)).toBe('checksum mismatch');
    const storage = new SimStorage({ seed: 1 });
    storage.mkdirp(DIR);
    const f = storage.open(`${DIR}/${DIRTY_LOG_FILE}`, 'create');
    f.write(buf, 0);
    f.close();
    expect(readDirtyLog(storage, DIR)?.all).toBe(true);
  });

  it('names the extents of cut records, torn payloads included, and everything when a header cannot be read', () => {
    const rec = (seq: number, offset: number, length: number) => {
      const h = Buffer.alloc(RECORD_HEADER_BYTES);
      encodeRecordHeader(h, { seq, time: 0, volume: 1, offset, length, payloadCrc: 0 });
      return Buffer.concat([h, Buffer.alloc(length)]);
    };
    const two = Buffer.concat([rec(5, 4096, 100), rec(6, 0, 5000)]);
    expect(cutExtents(two.subarray(0, two.byteLength - 10))).toEqual({ all: false, extents: [{ volume: 1, offset: 4096, length: 100 }, { volume: 1, offset: 0, length: 5000 }] });
    expect(cutExtents(two.subarray(0, RECORD_HEADER_BYTES + 100 + 20)).all).toBe(true);
    expect(cutExtents(null).all).toBe(true);
    expect(cutExtents(Buffer.alloc(0))).toEqual({ all: false, extents: [] });
  });

  it('joins overlapping and touching extents per volume', () => {
    const m = mergeExtents([{ volume: 0, offset: 100, length: 50 }, { volume: 1, offset: 0, length: 8 }, { volume: 0, offset: 0, length: 100 }, { volume: 0, offset: 120, length: 5 }, { volume: 0, offset: 300, length: 1 }]);
    expect(m.get(0)).toEqual([{ offset: 0, length: 150 }, { offset: 300, length: 1 }]);
    expect(m.get(1)).toEqual([{ offset: 0, length: 8 }]);
  });
});
