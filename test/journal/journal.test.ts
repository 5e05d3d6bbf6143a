// The journal promises: every write becomes one record with the next sequence number and a
// timestamp that never goes back; its payload and indicia read back exactly; segments are sealed at
// the size limit and renamed to the sequence range they hold; flush() makes appended records
// durable and one fsync serves every flush waiting for it (group commit); a record torn by a crash
// at the end of the open segment is cut off on open, and numbering continues after the last good
// record; a bad record with more journal after it is damage, reported with file and position.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { RewindError } from '../../src/errors.js';
import { Journal } from '../../src/journal/journal.js';
import { JournalReader, type RecordRef } from '../../src/journal/reader.js';
import { encodeRecordHeader, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../../src/journal/record.js';
import { crc32c } from '../../src/encoding/fields.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import type { OpenMode, Storage, StorageFile } from '../../src/storage/storage.js';
import { prng, randomBytes } from '../../src/prng.js';



/** The real storage, counting file syncs; a sync can be held until the test releases it. */
class CountingStorage implements Storage {
  fileSyncs = 0;
  dirSyncs = 0;
  /** While set, file syncs wait for this promise before reaching the disk. */
  hold: Promise<void> | null = null;

  open(p: string, mode: OpenMode): StorageFile {
    const inner = nodeStorage.open(p, mode);
    const self = this;
    return {
      path: inner.path,
      read: (buf, position, offset, length) => inner.read(buf, position, offset, length),
      write: (buf, position) => inner.write(buf, position),
      writev: (bufs, position) => inner.writev(bufs, position),
      size: () => inner.size(),
      truncate: (size) => inner.truncate(size),
      async sync() {
        self.fileSyncs++;
        if (self.hold) await self.hold;
        return inner.sync();
      },
      close: () => inner.close(),
    };
  }
  exists(p: string): boolean { return nodeStorage.exists(p); }
  list(dir: string): string[] { return nodeStorage.list(dir); }
  mkdirp(dir: string): void { nodeStorage.mkdirp(dir); }
  rename(from: string, to: string): void { nodeStorage.rename(from, to); }
  remove(p: string): void { nodeStorage.remove(p); }
  syncDir(dir: string): Promise<void> {
    this.dirSyncs++;
    return nodeStorage.syncDir(dir);
  }
  sizeOf(p: string): number { return nodeStorage.sizeOf(p); }
}

const BIG = 1 << 30;
const seg = (first: number, last: number | 'open') =>
  `${String(first).padStart(16, '0')}-${last === 'open' ? 'open' : String(last).padStart(16, '0')}.seg`;

let dir: string;
const opened: Journal[] = [];

async function openJournal(opts: { segmentBytesMax?: number; storage?: Storage; onWarning?: (m: string) => void } = {}, scanFrom?: { segment: number; position: number }): Promise<Journal> {
  const j = await Journal.open(opts.storage ?? nodeStorage, dir, { segmentBytesMax: opts.segmentBytesMax ?? BIG, onWarning: opts.onWarning }, scanFrom);
  opened.push(j);
  return j;
}

async function closeJournal(j: Journal): Promise<void> {
  await j.close();
  opened.splice(opened.indexOf(j), 1);
}

/** A journal as a reader in another process sees it: nothing is opened for writing or repaired. */
function readerOnly(): Journal {
  return { reader: new JournalReader(nodeStorage, dir) } as unknown as Journal;
}

function scanAll(j: Journal, verifyPayload = false): { refs: RecordRef[]; stop: ReturnType<Journal['reader']['scan']> } {
  const refs: RecordRef[] = [];
  const stop = j.reader.scan({ fromSeq: 1, verifyPayload, onRecord: (r) => void refs.push(r) });
  return { refs, stop };
}

function flipByte(file: string, position: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, position);
    b[0] ^= 0x5a;
    fs.writeSync(fd, b, 0, 1, position);
  } finally {
    fs.closeSync(fd);
  }
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rewind-journal-'));
});

afterEach(async () => {
  for (const j of opened.splice(0)) await j.close().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sequence numbers and times', () => {
  it('gives records consecutive sequence numbers starting at 1', async () => {
    const j = await openJournal();
    expect(j.lastSeq).toBe(0);
    const seqs = [0, 1, 0, 2, 1].map((v, i) => j.append(v, i * 512, Buffer.alloc(10 + i, i), 1000 + i).seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    expect(j.lastSeq).toBe(5);
  });

  it('stamps non-decreasing times: a clock that goes back is clamped to the last time', async () => {
    const j = await openJournal();
    const times = [1000, 2000, 1500, 1999, 2500, 100].map((t) => j.append(0, 0, Buffer.from('x'), t).time);
    expect(times).toEqual([1000, 2000, 2000, 2000, 2500, 2500]);
    expect(j.lastTime).toBe(2500);
    // The clamped time is what is stored, not just what append() returned.
    expect(scanAll(j).refs.map((r) => r.time)).toEqual(times);
  });

  it('keeps the last time across a reopen, so the clamp survives a restart', async () => {
    let j = await openJournal();
    j.append(0, 0, Buffer.from('a'), 5000);
    await closeJournal(j);
    j = await openJournal();
    expect(j.lastTime).toBe(5000);
    expect(j.append(0, 0, Buffer.from('b'), 4000)).toMatchObject({ seq: 2, time: 5000 });
  });
});

describe('reading back', () => {
  it('returns every payload and its indicia exactly (scan + payload, and scan with verifyPayload)', async () => {
    const rand = prng(1);
    const j = await openJournal();
    const written: { volume: number; offset: number; data: Buffer; time: number }[] = [];
    let t = 1_700_000_000_000;
    for (let i = 0; i < 200; i++) {
      const w = { volume: (rand() * 4) | 0, offset: Math.floor(rand() * 2 ** 40), data: randomBytes(rand, 1 + ((rand() * 3000) | 0)), time: (t += (rand() * 10) | 0) };
      written.push(w);
      const ref = j.append(w.volume, w.offset, w.data, w.time);
      expect(ref.seq).toBe(i + 1);
    }
    await j.flush();

    const { refs, stop } = scanAll(j);
    expect(stop.kind).toBe('end');
    expect(refs).toHaveLength(written.length);
    refs.forEach((r, i) => {
      const w = written[i];
      expect({ seq: r.seq, volume: r.volume, offset: r.offset, length: r.length, time: r.time }).toEqual({ seq: i + 1, volume: w.volume, offset: w.offset, length: w.data.byteLength, time: w.time });
      expect(r.payloadCrc).toBe(crc32c(w.data));
      expect(j.reader.payload(r).equals(w.data)).toBe(true);
    });

    const payloads: Buffer[] = [];
    const stop2 = j.reader.scan({ fromSeq: 1, verifyPayload: true, onRecord: (_r, p) => void payloads.push(Buffer.from(p!)) });
    expect(stop2.kind).toBe('end');
    payloads.forEach((p, i) => expect(p.equals(written[i].data)).toBe(true));

    // fromSeq skips the records before it.
    const tail: number[] = [];
    j.reader.scan({ fromSeq: 150, onRecord: (r) => void tail.push(r.seq) });
    expect(tail).toEqual(Array.from({ length: 51 }, (_, i) => 150 + i));
  });

  it('reads the same records after a clean close and reopen, and continues numbering', async () => {
    const rand = prng(2);
    let j = await openJournal();
    const datas = Array.from({ length: 20 }, () => randomBytes(rand, 100));
    datas.forEach((d, i) => j.append(1, i * 100, d, 10 + i));
    await closeJournal(j);
    j = await openJournal();
    expect(j.lastSeq).toBe(20);
    const { refs } = scanAll(j);
    expect(refs.map((r) => j.reader.payload(r).equals(datas[r.seq - 1]))).toEqual(datas.map(() => true));
    expect(j.append(1, 0, Buffer.from('next'), 100).seq).toBe(21);
  });
});

describe('segments', () => {
  // Each record here is 48 + 100 bytes; a segment of 64 + 2 * 148 bytes holds exactly two.
  const PAYLOAD = 100;
  const MAX = SEGMENT_HEADER_BYTES + 2 * (RECORD_HEADER_BYTES + PAYLOAD);

  it('seals a segment when the next record would pass segmentBytesMax, renamed <first>-<last>.seg', async () => {
    const j = await openJournal({ segmentBytesMax: MAX });
    expect(fs.readdirSync(dir)).toEqual([seg(1, 'open')]);
    for (let i = 1; i <= 5; i++) j.append(0, 0, Buffer.alloc(PAYLOAD, i), i);
    await j.flush();
    expect(fs.readdirSync(dir).sort()).toEqual([seg(1, 2), seg(3, 4), seg(5, 'open')]);
    for (const name of [seg(1, 2), seg(3, 4)]) expect(fs.statSync(path.join(dir, name)).size).toBe(MAX);
    expect(fs.statSync(path.join(dir, seg(5, 'open'))).size).toBe(SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + PAYLOAD);

    // Records read back across segment boundaries, with their segment and position.
    const { refs, stop } = scanAll(j, true);
    expect(stop.kind).toBe('end');
    expect(refs.map((r) => [r.seq, r.segment, r.position])).toEqual([
      [1, 1, 64], [2, 1, 212], [3, 3, 64], [4, 3, 212], [5, 5, 64],
    ]);
    expect(refs.map((r) => j.reader.payload(r)[0])).toEqual([1, 2, 3, 4, 5]);
  });

  it('appends a batch with consecutive seqs in one piece; a batch that does not fit the open segment starts the next one', async () => {
    const j = await openJournal({ segmentBytesMax: MAX });
    const refs = j.appendBatch([1, 2].map((i) => ({ volume: 0, offset: i, data: Buffer.alloc(i === 1 ? PAYLOAD : 10, i), time: i })));
    expect(refs.map((r) => [r.seq, r.segment, r.position])).toEqual([[1, 1, 64], [2, 1, 212]]);
    // Two more full records would pass the limit: the whole batch goes to a new segment, never split.
    const next = j.appendBatch([3, 4].map((i) => ({ volume: 0, offset: i, data: Buffer.alloc(PAYLOAD, i), time: i })));
    expect(next.map((r) => [r.seq, r.segment, r.position])).toEqual([[3, 3, 64], [4, 3, 212]]);
    await j.flush();
    expect(fs.readdirSync(dir).sort()).toEqual([seg(1, 2), seg(3, 'open')]);
    const { refs: all, stop } = scanAll(j, true);
    expect(stop.kind).toBe('end');
    expect(all.map((r) => [r.seq, j.reader.payload(r)[0]])).toEqual([[1, 1], [2, 2], [3, 3], [4, 4]]);
  });

  it('never seals an empty segment: a record larger than the limit gets a segment of its own', async () => {
    const j = await openJournal({ segmentBytesMax: MAX });
    j.append(0, 0, Buffer.alloc(1000), 1); // bigger than the limit, but the segment is empty
    j.append(0, 0, Buffer.alloc(10), 2);
    await j.flush();
    expect(fs.readdirSync(dir).sort()).toEqual([seg(1, 1), seg(2, 'open')]);
  });

  it('after a reopen, keeps appending to the open segment and seals it with the right range', async () => {
    let j = await openJournal({ segmentBytesMax: MAX });
    for (let i = 1; i <= 3; i++) j.append(0, 0, Buffer.alloc(PAYLOAD, i), i);
    await closeJournal(j);
    j = await openJournal({ segmentBytesMax: MAX });
    expect(j.lastSeq).toBe(3);
    for (let i = 4; i <= 5; i++) j.append(0, 0, Buffer.alloc(PAYLOAD, i), i);
    await j.flush();
    expect(fs.readdirSync(dir).sort()).toEqual([seg(1, 2), seg(3, 4), seg(5, 'open')]);
  });

  it('finishes a seal that a crash interrupted (next segment created, old one not yet renamed)', async () => {
    let j = await openJournal({ segmentBytesMax: MAX });
    for (let i = 1; i <= 5; i++) j.append(0, 0, Buffer.alloc(PAYLOAD, i), i);
    await closeJournal(j);
    fs.renameSync(path.join(dir, seg(3, 4)), path.join(dir, seg(3, 'open')));
    j = await openJournal({ segmentBytesMax: MAX });
    expect(fs.readdirSync(dir).sort()).toEqual([seg(1, 2), seg(3, 4), seg(5, 'open')]);
    expect(j.lastSeq).toBe(5);
    expect(scanAll(j, true).refs.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('flush and group commit', () => {
  it('resolves flush() only after the fsync of the appended records has completed', async () => {
    const storage = new CountingStorage();
    const j = await openJournal({ storage });
    j.append(0, 0, Buffer.from('hello'), 1);
    let release!: () => void;
    storage.hold = new Promise((r) => (release = r));
    let done = false;
    const before = storage.fileSyncs;
    const f = j.flush().then(() => (done = true));
    await until(() => storage.fileSyncs > before, { what: 'the flush reaches the (held) fsync' });
    expect(done).toBe(false);
    expect(j.syncedSeq).toBe(0);
    release();
    storage.hold = null;
    await f;
    expect(done).toBe(true);
    expect(j.syncedSeq).toBe(1);
  });

  it('serves many concurrent flush() calls with one fsync', async () => {
    const storage = new CountingStorage();
    const j = await openJournal({ storage });
    for (let i = 0; i < 10; i++) j.append(0, i, Buffer.from([i]), i);
    const before = storage.fileSyncs;
    await Promise.all(Array.from({ length: 100 }, () => j.flush()));
    expect(storage.fileSyncs - before).toBe(1);
    expect(j.syncedSeq).toBe(10);
  });

  it('batches flushes that arrive while a sync is in progress into the next single sync', async () => {
    const storage = new CountingStorage();
    const j = await openJournal({ storage });
    const before = storage.fileSyncs;
    let release!: () => void;
    storage.hold = new Promise((r) => (release = r));
    j.append(0, 0, Buffer.from('a'), 1);
    const first = j.flush();
    // While the first sync is held: more writes, many flushers.
    await until(() => storage.fileSyncs - before === 1, { what: 'the first flush reaches the (held) fsync' });
    const later: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      j.append(0, 0, Buffer.from('b'), 2);
      later.push(j.flush());
    }
    expect(storage.fileSyncs - before).toBe(1);
    storage.hold = null;
    release();
    await Promise.all([first, ...later]);
    expect(storage.fileSyncs - before).toBe(2);
    expect(j.syncedSeq).toBe(51);
  });

  it('does not sync when nothing was appended since the last flush', async () => {
    const storage = new CountingStorage();
    const j = await openJournal({ storage });
    j.append(0, 0, Buffer.from('a'), 1);
    await j.flush();
    const before = storage.fileSyncs + storage.dirSyncs;
    await j.flush();
    await Promise.all([j.flush(), j.flush()]);
    expect(storage.fileSyncs + storage.dirSyncs).toBe(before);
  });

  it('makes a sealed segment durable too when a flush follows the rotation', async () => {
    const storage = new CountingStorage();
    const j = await openJournal({ storage, segmentBytesMax: 64 + 2 * 60 });
    await j.flush();
    const before = storage.fileSyncs;
    for (let i = 0; i < 3; i++) j.append(0, 0, Buffer.alloc(12), i); // 1-2 sealed, 3 in a new segment
    await j.flush();
    expect(storage.fileSyncs - before).toBe(2); // the sealed segment and the open one
  });
});

describe('torn tail recovery', () => {
  const openName = seg(1, 'open');
  let datas: Buffer[];
  let goodSize: number;

  async function threeRecords(): Promise<void> {
    const rand = prng(3);
    datas = [randomBytes(rand, 300), randomBytes(rand, 17), randomBytes(rand, 4000)];
    const j = await openJournal();
    datas.forEach((d, i) => j.append(0, i * 4096, d, 100 + i));
    await closeJournal(j);
    goodSize = fs.statSync(path.join(dir, openName)).size;
    expect(goodSize).toBe(SEGMENT_HEADER_BYTES + 3 * RECORD_HEADER_BYTES + 300 + 17 + 4000);
  }

  async function reopenExpectingCut(): Promise<void> {
    const warnings: string[] = [];
    const j = await openJournal({ onWarning: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(openName);
    expect(warnings[0]).toContain(`byte ${goodSize}`);
    expect(fs.statSync(path.join(dir, openName)).size).toBe(goodSize);
    expect(j.lastSeq).toBe(3);
    expect(j.lastTime).toBe(102);
    const next = Buffer.from('after the crash');
    expect(j.append(0, 0, next, 200)).toMatchObject({ seq: 4, position: goodSize });
    await j.flush();
    const { refs, stop } = scanAll(j, true);
    expect(stop.kind).toBe('end');
    expect(refs.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect([...datas, next].every((d, i) => j.reader.payload(refs[i]).equals(d))).toBe(true);
  }

  it('cuts off a record whose payload was only partly written', async () => {
    await threeRecords();
    const payload = Buffer.alloc(1000, 7);
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    encodeRecordHeader(header, { seq: 4, time: 103, volume: 0, offset: 0, length: payload.byteLength, payloadCrc: crc32c(payload) });
    fs.appendFileSync(path.join(dir, openName), Buffer.concat([header, payload.subarray(0, 400)]));
    await reopenExpectingCut();
  });

  it('cuts off a record header that was only partly written', async () => {
    await threeRecords();
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    encodeRecordHeader(header, { seq: 4, time: 103, volume: 0, offset: 0, length: 10, payloadCrc: 0 });
    fs.appendFileSync(path.join(dir, openName), header.subarray(0, 30));
    await reopenExpectingCut();
  });

  it('cuts off garbage shorter than a record header', async () => {
    await threeRecords();
    fs.appendFileSync(path.join(dir, openName), randomBytes(prng(4), 20));
    await reopenExpectingCut();
  });

  it('cuts off a complete last record whose payload does not match its checksum (torn payload)', async () => {
    await threeRecords();
    const payload = Buffer.alloc(64, 9);
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    encodeRecordHeader(header, { seq: 4, time: 103, volume: 0, offset: 0, length: payload.byteLength, payloadCrc: crc32c(payload) });
    payload.fill(0, 32); // the second half never reached the disk
    fs.appendFileSync(path.join(dir, openName), Buffer.concat([header, payload]));
    await reopenExpectingCut();
  });

  // A crash can leave the file longer than its last good record (size updated, data pages lost).
  it('cuts off garbage longer than a record header (e.g. a zero-filled tail after a crash)', async () => {
    await threeRecords();
    fs.appendFileSync(path.join(dir, openName), Buffer.alloc(200));
    await reopenExpectingCut();
  });

  it('a reader (no truncation) treats the torn tail as the end of the journal and leaves the file alone', async () => {
    await threeRecords();
    fs.appendFileSync(path.join(dir, openName), Buffer.alloc(10, 1));
    const { JournalReader } = await import('../../src/journal/reader.js');
    const reader = new JournalReader(nodeStorage, dir);
    const seqs: number[] = [];
    const stop = reader.scan({ fromSeq: 1, verifyPayload: true, onRecord: (r) => void seqs.push(r.seq) });
    reader.closeFiles();
    expect(seqs).toEqual([1, 2, 3]);
    expect(stop).toMatchObject({ kind: 'torn', position: goodSize });
    expect(fs.statSync(path.join(dir, openName)).size).toBe(goodSize + 10);
  });
});

describe('damage', () => {
  const PAYLOAD = 100;
  const MAX = SEGMENT_HEADER_BYTES + 2 * (RECORD_HEADER_BYTES + PAYLOAD);
  const R2 = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + PAYLOAD; // position of the 2nd record of a segment

  async function fiveRecords(): Promise<void> {
    const j = await openJournal({ segmentBytesMax: MAX });
    for (let i = 1; i <= 5; i++) j.append(0, 0, Buffer.alloc(PAYLOAD, i), i);
    await closeJournal(j);
    expect(fs.readdirSync(dir).sort()).toEqual([seg(1, 2), seg(3, 4), seg(5, 'open')]);
  }

  function expectCorrupt(err: unknown, file: string, position: number): void {
    expect(err).toBeInstanceOf(RewindError);
    expect((err as RewindError).code).toBe('CORRUPT');
    expect((err as RewindError).message).toContain(`${file} at byte ${position}`);
  }

  it('reports a flipped payload byte in a sealed segment as damaged, with the file and record position', async () => {
    await fiveRecords();
    const file = path.join(dir, seg(1, 2));
    flipByte(file, SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 50); // middle of seq 1's payload
    // Nothing is applied, so the writer needs every record: it refuses to open.
    const err = await openJournal({ segmentBytesMax: MAX }).then(() => null, (e: unknown) => e);
    expect((err as RewindError).code).toBe('CORRUPT');
    expect((err as Error).message).toContain(`${file} at byte ${SEGMENT_HEADER_BYTES}`);
    // A reader (as verify uses) reports the damage and still reads the intact headers.
    const j = readerOnly();
    const { refs, stop } = scanAll(j, true);
    expect(refs).toEqual([]);
    expect(stop.kind).toBe('damaged');
    if (stop.kind !== 'damaged') return;
    expect(stop.segment.path).toBe(file);
    expect(stop.position).toBe(SEGMENT_HEADER_BYTES);
    expect(stop.reason).toMatch(/payload checksum mismatch for seq 1/);
    // Reading that one payload is refused too.
    const refs2: RecordRef[] = [];
    j.reader.scan({ fromSeq: 1, onRecord: (r) => void refs2.push(r) }); // headers are intact
    expect(refs2.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(() => j.reader.payload(refs2[0])).toThrow(/payload checksum mismatch for seq 1/);
  });

  it('reports a flipped header byte in the middle of a sealed segment even without payload checks', async () => {
    await fiveRecords();
    const file = path.join(dir, seg(3, 4));
    flipByte(file, R2 + 20); // inside seq 4's header
    const j = readerOnly();
    const { refs, stop } = scanAll(j);
    expect(refs.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(stop).toMatchObject({ kind: 'damaged', position: R2 });
    if (stop.kind === 'damaged') expect(stop.segment.path).toBe(file);
  });

  it('Journal.open refuses a journal with a damaged record in a segment it recovers from', async () => {
    await fiveRecords();
    const file = path.join(dir, seg(1, 2));
    flipByte(file, R2 + RECORD_HEADER_BYTES + 1); // seq 2's payload
    // The store passes the first record of the last applied window; recovery scans from there.
    // (Without a position, Journal.open reads only the newest segment: the tail a crash can tear.)
    const err = await Journal.open(nodeStorage, dir, { segmentBytesMax: MAX }, { segment: 1, position: SEGMENT_HEADER_BYTES }).then(
      (j) => { opened.push(j); return null; },
      (e: unknown) => e,
    );
    expectCorrupt(err, file, R2);
    // Nothing was cut off or renamed.
    expect(fs.readdirSync(dir).sort()).toEqual([seg(1, 2), seg(3, 4), seg(5, 'open')]);
    expect(fs.statSync(file).size).toBe(MAX);
  });

  it('a reader reports a bad record in the open segment with good records after it as damage', async () => {
    const j = await openJournal();
    for (let i = 1; i <= 4; i++) j.append(0, 0, Buffer.alloc(PAYLOAD, i), i);
    await closeJournal(j);
    const file = path.join(dir, seg(1, 'open'));
    flipByte(file, R2 + RECORD_HEADER_BYTES + 10); // seq 2's payload; seq 3 and 4 follow
    const { JournalReader } = await import('../../src/journal/reader.js');
    const reader = new JournalReader(nodeStorage, dir);
    const stop = reader.scan({ fromSeq: 1, verifyPayload: true, onRecord: () => {} });
    reader.closeFiles();
    expect(stop).toMatchObject({ kind: 'damaged', position: R2 });
  });

  it('the writer recovers the open segment to the point before a bad record, keeping the bytes it cuts off', async () => {
    const j = await openJournal();
    for (let i = 1; i <= 4; i++) j.append(0, 0, Buffer.alloc(PAYLOAD, i), i);
    await closeJournal(j);
    const file = path.join(dir, seg(1, 'open'));
    const size = fs.statSync(file).size;
    flipByte(file, R2 + RECORD_HEADER_BYTES + 10);
    const tail = fs.readFileSync(file).subarray(R2);
    const warnings: string[] = [];
    const jj = await Journal.open(nodeStorage, dir, { segmentBytesMax: BIG, onWarning: (m) => warnings.push(m) });
    opened.push(jj);
    expect(jj.lastSeq).toBe(1);
    expect(fs.statSync(file).size).toBe(R2);
    expect(fs.readFileSync(`${file}.cut-${R2}`).equals(tail)).toBe(true);
    expect(size - R2).toBe(tail.byteLength);
    expect(warnings.join('\n')).toMatch(/bad record at byte .* kept the .* bytes cut off/);
    expect(jj.append(0, 0, Buffer.alloc(1), 10).seq).toBe(2);
  });
});
