// The tier against a real S3 service: Ceph's radosgw as scripts/ceph-dev.sh starts it (CI), or any
// endpoint in REWIND_TIER_ENDPOINT. Shipping, `rewind restore/log/status --from` on the CLI, and the
// faults: throttling (503 SlowDown) injected by a proxy, radosgw killed in the middle of uploads and
// restarted (needs CEPH_DEV_DIR, the directory ceph-dev.sh started), a corrupted object.
import { readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initStore, Store } from '../../src/index.js';
import { UPLOAD_BUFFER_BYTES } from '../../src/tier/buffer-pool.js';
import { S3ObjectStore } from '../../src/tier/s3-store.js';
import { storeShipSource } from '../../src/tier/ship-source.js';
import { readTierConfig } from '../../src/tier/tier-config.js';
import { TierUploader } from '../../src/tier/uploader.js';
import { nodeStorage } from '../../src/storage/node-storage.js';
import { ok, rewind, run, REPO } from '../helpers/processes.js';
import { until } from '../helpers/until.js';
import { Model, prng, randomBytes } from '../helpers/model.js';
import { startFaultProxy } from './fault-proxy.js';
import { bucketReady, freshPrefix, s3Endpoint, TIER_BUCKET } from './s3-env.js';

const endpoint = s3Endpoint();
const SIZE = 4 * 2 ** 20;
const B = 4096;

describe.skipIf(endpoint === null)('the tier on S3', () => {
  let dir: string;
  let store: Store;
  let up: TierUploader;
  let s3: S3ObjectStore;
  let location: string;
  const model = new Model({ disk0: SIZE });
  const rand = prng(77);
  const windowEnds: number[] = [];

  const writeWindows = async (n: number, bytes = 64 * 1024) => {
    for (let w = 0; w < n; w++) {
      for (let k = 0; k < 3; k++) {
        const len = bytes / 3 + Math.floor(rand() * 1000);
        const offset = Math.floor(rand() * (SIZE - len));
        const data = randomBytes(rand, len);
        const seq = await store.write('disk0', offset, data);
        model.add({ seq, volume: 'disk0', offset, data, time: 0 });
      }
      store.markWindow();
      windowEnds.push(store.lastSeq);
    }
    await store.settle();
  };
  const shipAll = async (u = up) => {
    while (await u.pass());
  };
  const restoreFrom = async (seq: number, extra: string[] = []) => {
    const out = join(dir, `from-${seq}.img`);
    const r = await rewind(['restore', '--from', location, '--endpoint', endpoint!, '--volume', 'disk0', '--seq', String(seq), '--out', out, '--json', ...extra], 60_000);
    return { r, out };
  };

  beforeAll(async () => {
    await bucketReady(endpoint!);
    dir = mkdtempSync(join(tmpdir(), 'rewind-tier-s3-'));
    const storeDir = join(dir, 'store');
    await initStore(storeDir, { volumes: [{ name: 'disk0', size: SIZE }], blockSize: B, window: 'marker' });
    const set = ok(await rewind(['tier', storeDir, '--url', `s3://${TIER_BUCKET}/${freshPrefix('s3test')}`, '--endpoint', endpoint!, '--json'], 60_000));
    location = JSON.parse(set.stdout).location;
    const c = readTierConfig(nodeStorage, storeDir)!;
    store = await Store.open(storeDir, { threads: 1, limits: { segmentBytesMax: 256 * 1024 }, historyHold: () => up.hold() });
    s3 = new S3ObjectStore({ bucket: TIER_BUCKET, prefix: location.slice(`s3://${TIER_BUCKET}/`.length) }, { endpoint: endpoint! });
    up = new TierUploader(s3, storeShipSource(store), { storeId: c.storeId, dir: storeDir, retain: null, baseAfterBytes: SIZE });
    await writeWindows(20);
    await shipAll();
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    s3?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('restores from the tier alone on the command line, equal to the model and a local restore', async () => {
    for (const seq of [0, windowEnds[3], windowEnds[9] - 1, windowEnds[19]]) {
      const { r, out } = await restoreFrom(seq);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ volume: 'disk0', seq, nearest: false, bytes: SIZE });
      expect(readFileSync(out).equals(model.at('disk0', seq)), `seq ${seq}`).toBe(true);
    }
  }, 120_000);

  it('log and status --from read the tier', async () => {
    const log = JSON.parse(ok(await rewind(['log', '--from', location, '--endpoint', endpoint!, '--json'], 60_000)).stdout);
    expect(log.at(-1).lastSeq).toBe(windowEnds[19]);
    expect(log.length).toBe(20);
    const st = JSON.parse(ok(await rewind(['status', '--from', location, '--endpoint', endpoint!, '--json'], 60_000)).stdout);
    expect(st).toMatchObject({ tier: location, newestRestorable: { seq: windowEnds[19] }, oldestRestorable: { seq: 0 }, packsThrough: windowEnds[19] });
  }, 120_000);

  it('keeps shipping through injected 503 SlowDown answers, and nothing acknowledged is lost', async () => {
    const proxy = await startFaultProxy(endpoint!, (n) => n % 3 === 1);
    const through = new S3ObjectStore({ bucket: TIER_BUCKET, prefix: location.slice(`s3://${TIER_BUCKET}/`.length) }, { endpoint: proxy.endpoint, retry: { attempts: 8, baseMs: 5, capMs: 50, random: Math.random } });
    const c = readTierConfig(nodeStorage, store.dir)!;
    const slow = new TierUploader(through, storeShipSource(store), { storeId: c.storeId, dir: store.dir, retain: null, baseAfterBytes: SIZE });
    try {
      await writeWindows(10);
      await shipAll(slow);
      expect(proxy.throttled).toBeGreaterThan(0);
      expect(slow.committed!.packs.at(-1)!.lastSeq).toBe(store.appliedSeq);
    } finally {
      through.close();
      await proxy.close();
    }
    // The store's uploader from here on starts from what the tier holds now.
    up = new TierUploader(s3, storeShipSource(store), { storeId: c.storeId, dir: store.dir, retain: null, baseAfterBytes: SIZE });
    await shipAll();
    await up.pass({ forceBase: true }); // as serve's last pass does: the tier reaches the last write
    const { r, out } = await restoreFrom(windowEnds.at(-1)!);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out).equals(model.at('disk0', windowEnds.at(-1)!))).toBe(true);
  }, 120_000);

  it.skipIf(!process.env.CEPH_DEV_DIR)('resumes after radosgw is killed in the middle of uploads and restarted', async () => {
    const cephDir = process.env.CEPH_DEV_DIR!;
    const pid = Number(readFileSync(join(cephDir, 'run', 'rgw.pid'), 'utf8'));
    up.start();
    try {
      await writeWindows(30, 256 * 1024);
      process.kill(pid, 'SIGKILL');
      await writeWindows(10, 256 * 1024);
      await until(() => up.totals.failedPasses > 0, { waitMs: 60_000, what: 'a shipping pass failed against the killed radosgw' });
      ok(await run(join(REPO, 'scripts', 'ceph-dev.sh'), ['rgw-start', cephDir], { timeoutMs: 90_000 }));
      await until(() => up.backlog().bytes === 0 && up.committed!.packs.at(-1)!.lastSeq === store.appliedSeq, { waitMs: 90_000, what: 'the backlog is shipped after the restart', state: () => JSON.stringify(up.backlog()) });
    } finally {
      await up.stop();
    }
    await up.pass({ forceBase: true });
    const seq = windowEnds.at(-1)!;
    const { r, out } = await restoreFrom(seq);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out).equals(model.at('disk0', seq))).toBe(true);
  }, 300_000);

  it('uploads a file over one upload buffer in parts and a smaller one whole, byte for byte', async () => {
    const rnd = prng(5);
    for (const bytes of [UPLOAD_BUFFER_BYTES * 2 + 12_345, 70_000]) {
      const path = join(dir, `file-${bytes}`);
      const data = randomBytes(rnd, bytes);
      writeFileSync(path, data);
      await s3.putFile(`test-file-${bytes}`, path, bytes);
      expect((await s3.get(`test-file-${bytes}`))!.equals(data)).toBe(true);
      const mid = { start: UPLOAD_BUFFER_BYTES - 10, end: Math.min(bytes, UPLOAD_BUFFER_BYTES + 10) };
      if (mid.start < bytes) expect((await s3.get(`test-file-${bytes}`, mid))!.equals(data.subarray(mid.start, mid.end))).toBe(true);
      await s3.delete(`test-file-${bytes}`);
    }
  });

  it('a restore that needs a corrupted object fails naming it (exit 1); others still work', async () => {
    const m = up.committed!;
    const victim = m.packs[2];
    const good = await s3.get(victim.key);
    const bad = Buffer.from(good!);
    bad[100] ^= 0x5a;
    await s3.put(victim.key, bad);
    try {
      const { r } = await restoreFrom(victim.firstSeq - 1);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(victim.key);
      expect(r.stderr).toMatch(/SHA-256 mismatch/);
      const newest = m.bases.at(-1)!.seq;
      const fine = await restoreFrom(newest);
      expect(fine.r.code, fine.r.stderr).toBe(0);
      expect(readFileSync(fine.out).equals(model.at('disk0', newest))).toBe(true);
    } finally {
      await s3.put(victim.key, good!);
    }
  }, 120_000);
});
