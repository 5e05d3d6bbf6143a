// A real process crash (GitHub issue 5, item 2): `rewind serve` is killed with SIGKILL at a random
// moment while a controlled writer (known patterns on one pipelined connection, periodic FLUSH) and
// fio's nbd engine write to it. After a restart (recovery) every write acknowledged before a
// completed FLUSH reads back, the volume is exactly a prefix of the writes in the order sent,
// `rewind verify` passes, and `rewind restore --seq N` for points seen by `rewind status` (another
// process, while serve ran) agrees with the writer's record. Three kill points on one store, so
// later rounds crash a store that was itself recovered.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { RawClient } from '../nbd/raw-client.js';
import { prng } from '../helpers/model.js';
import { requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';
import {
  BLOCK, MiB, consistentPrefix, identifyBlock, killChildren, nbdshEnv, ok, patternWrite, removeTempDirs, rewind, run, sha256,
  sleep, startServe, tempDir, uri, type PlannedWrite, type Ran, type Served,
} from './helpers.js';

const REGION_BLOCKS = 4096; // the controlled writer owns the first 16 MiB; fio the upper 32 MiB
const DEPTH = 12;
const CMD_WRITE = 1;
const CMD_FLUSH = 3;

afterEach(() => killChildren());
afterAll(removeTempDirs);

interface Sample {
  lastSeq: number;
  /** Highest position acknowledged before `rewind status` started: its seq is <= lastSeq. */
  ackedBefore: number;
  /** Positions sent when it returned: later ones have seqs > lastSeq. */
  sentAfter: number;
}

/** Writes in the order they reached the store (positions 1..), each with a unique pattern id. */
class History {
  writes: (PlannedWrite & { id: number })[] = [];
  private nextId = 1;
  add(block: number, blocks: number): { n: number; id: number } {
    const w = { n: this.writes.length + 1, id: this.nextId++, block, blocks };
    this.writes.push(w);
    return w;
  }
  /** Position of each block's holder; throws on a block no known write could have left. */
  positions(image: Buffer, base = 0): number[] {
    const byId = new Map(this.writes.map((w) => [w.id, w.n]));
    return Array.from({ length: REGION_BLOCKS }, (_, b) => {
      const id = identifyBlock(image.subarray(base + b * BLOCK, base + (b + 1) * BLOCK), b);
      if (id === 0) return 0;
      const n = byId.get(id);
      if (n === undefined) throw new Error(`block ${b} holds write id ${id}, which was lost in an earlier crash (or never sent)`);
      return n;
    });
  }
  prefix(image: Buffer, base = 0): { lo: number; hi: number } {
    return consistentPrefix(this.positions(image, base), this.writes, this.writes.length);
  }
  truncate(k: number): void {
    this.writes.length = k;
  }
}

/** One pipelined connection writing patterns until the server goes away. */
async function controlledWriter(port: number, hist: History, rand: () => number, state: { sent: number; maxAcked: number; durable: number; flushes: number; stop: boolean }) {
  const { client } = await RawClient.open(port, 'disk0');
  const inflight = new Map<bigint, { kind: 'write'; n: number } | { kind: 'flush'; covers: number }>();
  let handle = 1n;
  let sinceFlush = 0;
  try {
    while (!state.stop) {
      while (inflight.size < DEPTH && !state.stop) {
        if (sinceFlush >= 24 + Math.floor(rand() * 24)) {
          // Covers every write acknowledged so far (conservative: the server also covers those sent).
          inflight.set(handle, { kind: 'flush', covers: state.maxAcked });
          client.sendRequest(CMD_FLUSH, { handle: handle++ });
          sinceFlush = 0;
          continue;
        }
        const big = rand() < 0.15;
        const blocks = big ? 16 : 1;
        const block = big ? Math.floor(rand() * (REGION_BLOCKS / 16)) * 16 : Math.floor(rand() * REGION_BLOCKS);
        const w = hist.add(block, blocks);
        inflight.set(handle, { kind: 'write', n: w.n });
        client.sendRequest(CMD_WRITE, { handle: handle++, offset: block * BLOCK, payload: patternWrite(w.id, block, blocks) });
        state.sent = w.n;
        sinceFlush++;
      }
      const r = await client.simpleReply(); // throws once the server is gone
      const req = inflight.get(r.handle);
      if (!req) throw new Error(`reply for unknown handle ${r.handle}`);
      inflight.delete(r.handle);
      if (r.error !== 0) throw new Error(`${req.kind} failed with NBD error ${r.error}`);
      if (req.kind === 'write') state.maxAcked = Math.max(state.maxAcked, req.n);
      else {
        state.durable = Math.max(state.durable, req.covers);
        state.flushes++;
      }
    }
  } catch {
    // the server was killed: replies still in flight are simply never acknowledged
  } finally {
    client.destroy();
  }
}

async function readRegion(port: number): Promise<Buffer> {
  const { client } = await RawClient.open(port, 'disk0');
  const parts: Buffer[] = [];
  for (let at = 0; at < REGION_BLOCKS * BLOCK; at += MiB) {
    const r = await client.readAt(at, MiB);
    expect(r.error).toBe(0);
    parts.push(r.data!);
  }
  await client.disconnect();
  return Buffer.concat(parts);
}

function fio(port: number, seed: number): Promise<Ran> {
  return run(
    'fio',
    [
      '--name=load', '--ioengine=nbd', `--uri=${uri(port, 'disk0')}`, '--rw=randwrite', '--bssplit=4k/80:64k/20', '--iodepth=16',
      '--offset=32m', '--size=32m', '--fsync=16', '--time_based', '--runtime=4', '--verify_state_save=0', `--randseed=${seed}`,
      '--output-format=json',
    ],
    { timeoutMs: 15_000 },
  );
}

it('SIGKILL of rewind serve during writes: flushed writes survive, the volume is a prefix, verify and restore agree', async () => {
  const t0 = Date.now();
  const dir = tempDir();
  const store = path.join(dir, 'store');
  ok(await rewind(['init', store, '--volume', 'disk0:64M', '--window', 'time:100ms']));
  const useFio = requireTool('fio'); // extra load where present; CI must have it
  const useNbdcopy = requireTool('nbdcopy');
  const seed = Number(process.env.REWIND_CRASH_SEED ?? Date.now() % 1e9);
  const rand = prng(seed);
  const hist = new History();
  const samplesAll: { sample: Sample; round: number }[] = [];
  const summary: string[] = [];
  let srv: Served = await startServe(store);
  const KILL_POINTS = 3;
  for (let round = 1; round <= KILL_POINTS; round++) {
    const state = { sent: hist.writes.length, maxAcked: hist.writes.length, durable: hist.writes.length, flushes: 0, stop: false };
    const base = hist.writes.length;
    const fioRun = useFio && round !== 2 ? fio(srv.port, round) : null;
    const writer = controlledWriter(srv.port, hist, rand, state);
    // `rewind status` from other processes while serve runs.
    const samples: Sample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const ackedBefore = state.maxAcked;
        const r = await rewind(['status', store, '--json'], 10_000);
        if (!sampling && r.code !== 0) break;
        const s = JSON.parse(ok(r).stdout) as { lastSeq: number };
        samples.push({ lastSeq: s.lastSeq, ackedBefore, sentAfter: state.sent });
      }
    })();
    // A random kill point, by progress rather than by time: once a random number of writes past this
    // round's start is acknowledged, a flush has completed and a status sample was taken.
    const killAfter = base + 50 + Math.floor(rand() * 400);
    await until(() => state.maxAcked >= killAfter && state.durable > base && samples.length > 0, {
      waitMs: 30_000, what: `${killAfter - base} writes acknowledged, a flush done and a status sample taken`,
      state: () => `acknowledged ${state.maxAcked - base}, durable ${state.durable - base}, samples ${samples.length}`,
    });
    srv.proc.kill('SIGKILL');
    const exit = await srv.exited;
    expect(exit.signal).toBe('SIGKILL');
    state.stop = true;
    sampling = false;
    await writer;
    await sampler;
    const fioOut = fioRun ? await fioRun : null;
    expect(state.durable).toBeGreaterThan(base); // some flushes completed before the kill

    // Restart: recovery.
    srv = await startServe(store);
    const image = await readRegion(srv.port);
    const { lo, hi } = hist.prefix(image);
    expect(lo, 'the region is "the first K writes, in the order sent" for some K').toBeLessThanOrEqual(hi);
    const k = lo;
    expect(k, 'every write acknowledged before a completed FLUSH reads back').toBeGreaterThanOrEqual(state.durable);
    // SIGKILL keeps the page cache: even writes acknowledged but not flushed were journaled.
    expect(k, 'every acknowledged write survives a process crash').toBeGreaterThanOrEqual(state.maxAcked);
    expect(k).toBeLessThanOrEqual(state.sent);
    hist.truncate(k);

    const status = JSON.parse(ok(await rewind(['status', store, '--json'])).stdout) as { lastSeq: number; appliedSeq: number };
    for (const s of samples) expect(status.lastSeq, 'a seq seen by rewind status survives').toBeGreaterThanOrEqual(s.lastSeq);
    const v = await rewind(['verify', store], 30_000);
    expect(v.code, v.stdout + v.stderr).toBe(0);

    // The latest point restored equals the volume served now (fio's half included).
    const latest = path.join(dir, `latest-${round}.img`);
    ok(await rewind(['restore', store, '--volume', 'disk0', '--seq', String(status.lastSeq), '--out', latest], 30_000));
    if (useNbdcopy) {
      const served = path.join(dir, `served-${round}.img`);
      ok(await run('nbdcopy', [uri(srv.port, 'disk0'), served], { env: nbdshEnv() }));
      expect(sha256(readFileSync(latest)), 'restore --seq lastSeq equals the volume served after recovery').toBe(sha256(readFileSync(served)));
    } else {
      expect(readFileSync(latest).subarray(0, REGION_BLOCKS * BLOCK).equals(image)).toBe(true);
    }

    // Points seen while serve ran: the first and the last sample of this round.
    const picked = [...new Set([samples[0], samples[samples.length - 1]])];
    for (const s of picked) {
      const out = path.join(dir, `seq-${round}-${s.lastSeq}.img`);
      ok(await rewind(['restore', store, '--volume', 'disk0', '--seq', String(s.lastSeq), '--out', out], 30_000));
      const img = readFileSync(out);
      const p = hist.prefix(img);
      expect(p.lo, `restore --seq ${s.lastSeq} is a prefix of the writes`).toBeLessThanOrEqual(p.hi);
      expect(p.lo, `restore --seq ${s.lastSeq} holds every write acknowledged before status ran`).toBeGreaterThanOrEqual(s.ackedBefore);
      expect(p.lo, `restore --seq ${s.lastSeq} holds no write sent after status returned`).toBeLessThanOrEqual(s.sentAfter);
      if (useNbdcopy && s === picked[picked.length - 1]) {
        const viaView = path.join(dir, `view-${round}-${s.lastSeq}.img`);
        ok(await run('nbdcopy', [uri(srv.port, `disk0@seq=${s.lastSeq}`), viaView], { env: nbdshEnv() }));
        expect(sha256(readFileSync(viaView)), `disk0@seq=${s.lastSeq} equals restore --seq ${s.lastSeq}`).toBe(sha256(img));
      }
      samplesAll.push({ sample: s, round });
    }
    const fioIos = fioOut && fioOut.stdout.includes('{') ? (() => {
      try {
        return JSON.parse(fioOut.stdout.slice(fioOut.stdout.indexOf('{'))).jobs[0].write.total_ios as number;
      } catch {
        return '?';
      }
    })() : fioRun ? 'killed' : 'off';
    summary.push(`kp${round}: sent ${state.sent - base}, acked ${state.maxAcked - base}, flushed ${state.durable - base} (${state.flushes} flushes), recovered ${k - base}, status samples ${samples.length}, fio ios ${fioIos}, lastSeq ${status.lastSeq}`);
  }
  // History taken before earlier crashes is still exact after later ones.
  const first = samplesAll[0];
  if (first) {
    const out = path.join(dir, 'again.img');
    ok(await rewind(['restore', store, '--volume', 'disk0', '--seq', String(first.sample.lastSeq), '--out', out], 30_000));
    const p = hist.prefix(readFileSync(out));
    expect(p.lo).toBeLessThanOrEqual(p.hi);
    expect(p.lo).toBeGreaterThanOrEqual(first.sample.ackedBefore);
  }
  srv.proc.kill('SIGTERM');
  const end = await Promise.race([srv.exited, sleep(15_000).then(() => null)]);
  expect(end?.code, srv.stderr()).toBe(0);
  console.log(`serve-kill: seed ${seed} (REWIND_CRASH_SEED), ${KILL_POINTS} kill points, ${hist.writes.length} pattern writes kept, ${samplesAll.length} restore points checked, ${Date.now() - t0} ms; ${summary.join('; ')}`);
}, 90_000);
