// `rewind serve` ships in the background: the real bin serves a store with a tier set up, qemu-io
// writes through NBD, and the test waits until `rewind status --json` (another process) says the
// tier holds everything (backlog 0, the shipped chain at the last write), never for a fixed time.
// While serve runs, /metrics carries the rewind_tier_* figures. After a clean stop the store is
// deleted and each point is restored from the tier alone (`rewind restore --from`) into a fresh
// directory, equal to what was written. Real S3 as the other tier tests (s3-env.ts); qemu-io from
// qemu-utils (a missing tool fails in CI, skips elsewhere).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';
import { ok, removeTempDirs, rewind, run, startServe, stopAll, tempDir, uri } from '../helpers/processes.js';
import { bucketReady, freshPrefix, s3Endpoint, TIER_BUCKET } from './s3-env.js';

const endpoint = s3Endpoint();
const SIZE = 8 * 2 ** 20;

afterEach((ctx) => stopAll(ctx));
afterAll(removeTempDirs);

interface TierStatus {
  lastSeq: number;
  appliedSeq: number;
  tier?: { location: string; bytes: number; oldestUnshippedSeq: number | null; packsThrough: number; segmentsThrough: number };
}

/** The rewind_* samples of a Prometheus page (labelled ones summed per name). */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(rewind_[a-z_]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[2]));
  }
  return out;
}

/** qemu-io writes of a byte pattern, applied to the model as well (unaligned ones included). */
async function writePatterns(port: number, model: Buffer, writes: [offset: number, length: number, pattern: number][]): Promise<void> {
  ok(await run('qemu-io', ['-f', 'raw', ...writes.flatMap(([o, l, p]) => ['-c', `write -P 0x${p.toString(16)} ${o} ${l}`]), uri(port, 'disk0')], { timeoutMs: 60_000 }));
  for (const [o, l, p] of writes) model.fill(p, o, o + l);
}

describe.skipIf(endpoint === null)('rewind serve with a tier', () => {
  it('ships in the background; after a clean stop every point restores from the tier alone', async (ctx) => {
    if (!requireTool('qemu-io')) ctx.skip();
    await bucketReady(endpoint!);
    const dir = tempDir('rewind-tier-serve-');
    const store = join(dir, 'store');
    ok(await rewind(['init', store, '--volume', 'disk0:8M', '--window', 'time:1s']));
    const set = ok(await rewind(['tier', store, '--url', `s3://${TIER_BUCKET}/${freshPrefix('serve')}`, '--endpoint', endpoint!, '--json'], 60_000));
    const location = JSON.parse(set.stdout).location as string;

    const srv = await startServe(store, ['--metrics', '127.0.0.1:0']);
    expect(srv.stderr()).toContain(`shipping history to ${location}`);
    const metricsUrl = /rewind: metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(srv.stderr())![1];

    let last: TierStatus | null = null;
    /** Waits until every write is applied and the tier holds all of it, as status --json says. */
    const shipped = async (): Promise<TierStatus> => {
      await until(async () => {
        const s = (last = JSON.parse(ok(await rewind(['status', store, '--json'])).stdout) as TierStatus);
        return s.appliedSeq === s.lastSeq && s.tier !== undefined && s.tier.bytes === 0 && s.tier.oldestUnshippedSeq === null && s.tier.packsThrough === s.lastSeq;
      }, { waitMs: 120_000, what: "status --json shows the tier's backlog at 0 and its chain at the last write", state: () => JSON.stringify(last) });
      return last!;
    };

    const model = Buffer.alloc(SIZE);
    await writePatterns(srv.port, model, [[0, 256 * 1024, 0x11], [3 * 2 ** 20, 64 * 1024, 0x22], [5000, 12_345, 0x33]]);
    await writePatterns(srv.port, model, [[7 * 2 ** 20, 1 * 2 ** 20, 0x44], [100_000, 4096, 0x55]]);
    const first = await shipped();
    const firstImage = Buffer.from(model);
    expect(first.tier!.location).toBe(location);

    // The figures while serve runs: everything uploaded, nothing waiting, the shipped chain at the point.
    let m = new Map<string, number>();
    await until(async () => (m = await scrape(metricsUrl)).get('rewind_tier_shipped_seq') === first.lastSeq, {
      waitMs: 30_000, what: 'the metrics page shows the shipped seq', state: () => JSON.stringify([...m].filter(([k]) => k.startsWith('rewind_tier'))),
    });
    expect(m.get('rewind_tier_backlog_bytes')).toBe(0);
    expect(m.get('rewind_tier_uploaded_bytes_total')).toBeGreaterThan(0);
    expect(m.get('rewind_tier_failed_passes_total')).toBe(0);
    // No sample while nothing waits.
    expect(m.has('rewind_tier_oldest_unshipped_seq')).toBe(false);
    const uploadedBefore = m.get('rewind_tier_uploaded_bytes_total')!;

    await writePatterns(srv.port, model, [[2 * 2 ** 20, 512 * 1024, 0x66], [4096 * 3 + 17, 70_000, 0x77], [0, 4096, 0x88]]);
    const second = await shipped();
    expect(second.lastSeq).toBeGreaterThan(first.lastSeq);
    await until(async () => ((await scrape(metricsUrl)).get('rewind_tier_uploaded_bytes_total') ?? 0) > uploadedBefore, { waitMs: 30_000, what: 'the uploaded bytes counter grows with the second writes' });

    const exit = await srv.stop(60_000);
    expect(exit, srv.stderr()).toEqual({ code: 0, signal: null });
    expect(srv.stderr()).toContain('rewind: closed cleanly');
    expect(srv.stderr()).not.toMatch(/tier: .*failed/);

    // The tier alone: no local store any more, a fresh directory for the output.
    rmSync(store, { recursive: true, force: true });
    const fresh = tempDir('rewind-tier-fresh-');
    for (const [seq, image] of [[first.lastSeq, firstImage], [second.lastSeq, model]] as const) {
      const out = join(fresh, `disk0-${seq}.img`);
      const r = await rewind(['restore', '--from', location, '--endpoint', endpoint!, '--volume', 'disk0', '--seq', String(seq), '--out', out, '--json'], 120_000);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ volume: 'disk0', seq, bytes: SIZE });
      expect(readFileSync(out).equals(image), `seq ${seq} from the tier equals what was written`).toBe(true);
    }
  }, 300_000);
});
