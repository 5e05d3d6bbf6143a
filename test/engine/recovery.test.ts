// A writer killed with SIGKILL loses nothing it acknowledged with a flush: after reopening, every
// flushed write is there, production equals the journal, and every past point still restores.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store, openStoreReader, initStore } from '../../src/index.js';
import { verifyStore } from '../../src/verify/verify.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { Model, prng, randomBytes } from '../helpers/model.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const SIZE = 1 << 20;
const ROOT = resolve(import.meta.dirname, '../..');

/** The writes the child makes, the same sequence the test rebuilds as its model. */
function workload(seed: number, n: number) {
  const rand = prng(seed);
  return Array.from({ length: n }, () => {
    const len = 1 + Math.floor(rand() * 20000);
    const offset = Math.floor(rand() * (SIZE - len));
    return { offset, data: randomBytes(rand, len) };
  });
}

const CHILD = `
import { Store } from ${JSON.stringify(join(ROOT, 'dist/src/index.js'))};
import { prng, randomBytes } from ${JSON.stringify(join(ROOT, 'dist/src/prng.js'))};
const [dir, seed, n] = process.argv.slice(1);
const store = await Store.open(dir, { threads: 1 });
const rand = prng(Number(seed));
for (let i = 0; i < Number(n); i++) {
  const len = 1 + Math.floor(rand() * 20000);
  const offset = Math.floor(rand() * (${SIZE} - len));
  const seq = await store.write('v', offset, randomBytes(rand, len));
  if (i % 25 === 24) { await store.flush(); process.stdout.write('flushed ' + seq + '\\n'); }
  if (i % 10 === 9) await new Promise((r) => setTimeout(r, 1));
}
process.stdout.write('done\\n');
setInterval(() => {}, 1000);
`;

describe('recovery after SIGKILL', () => {
  for (const seed of [11, 12, 13]) {
    it(`keeps every flushed write (seed ${seed})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rewind-crash-'));
      dirs.push(dir);
      await initStore(dir, { volumes: [{ name: 'v', size: SIZE }], window: 'count:9' });
      const n = 400;
      const rand = prng(seed * 7);
      const killAfterFlushes = 2 + Math.floor(rand() * 10);
      const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dir, String(seed), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let flushed = 0;
      let flushes = 0;
      await new Promise<void>((done, fail) => {
        const timer = setTimeout(() => fail(new Error('child did not reach the kill point')), 60_000);
        child.stdout!.on('data', (d: Buffer) => {
          for (const line of d.toString().split('\n')) {
            const m = /^flushed (\d+)$/.exec(line);
            if (m) {
              flushed = Number(m[1]);
              if (++flushes === killAfterFlushes) {
                child.kill('SIGKILL');
                clearTimeout(timer);
                done();
              }
            }
            if (line === 'done') {
              child.kill('SIGKILL');
              clearTimeout(timer);
              done();
            }
          }
        });
      });
      await new Promise((r) => child.once('exit', r));

      const store = await Store.open(dir, { threads: 1, autoTick: false });
      const last = store.lastSeq;
      expect(last).toBeGreaterThanOrEqual(flushed);
      const model = new Model({ v: SIZE });
      workload(seed, last).forEach((w, i) => model.add({ seq: i + 1, volume: 'v', offset: w.offset, data: w.data, time: 0 }));
      expect(readFileSync(join(dir, 'volumes', 'v')).equals(model.at('v', last)), 'production equals the journal').toBe(true);
      const r = prng(seed);
      for (let k = 0; k < 8; k++) {
        const seq = Math.floor(r() * (last + 1));
        expect(store.history.view('v', seq).read(0, SIZE).equals(model.at('v', seq)), `seq ${seq}`).toBe(true);
      }
      await store.settle();
      expect(readFileSync(join(dir, 'replica', 'v')).equals(model.at('v', last)), 'replica equals production').toBe(true);
      await store.close();
      const reader = await openStoreReader(dir);
      const report = verifyStore({ storage: nodeStorage, dir, blockSize: 4096, volumes: reader.history.volumes, index: reader.history.index, journal: reader.history.journal });
      reader.close();
      expect(report.problems).toEqual([]);
    });
  }
});
