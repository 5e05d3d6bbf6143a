// `rewind bisect`, run as a user runs it (the real bin) with a real NBD client as the probe: nbdsh
// reads the view at $REWIND_URI (or at {} in the command) and fails once a planted bad write is
// there. bisect names that write (seq, time, transaction, offset, length) in about log2(writes to the
// volume) probes, for a write in an applied window and one in the unapplied tail, with its ends as
// seqs or times, alongside a running `rewind serve` too; bad input (no command, ends reversed or out of range, a command that fails at
// --from or succeeds at --to, one that cannot run) exits 2 with a message saying what to change.
import * as fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, nbdshEnv, run, startServe, stopAll, type Ran } from '../helpers/processes.js';
import { requireTool } from '../helpers/tools.js';
import { SET_VOLUMES, volumeSetHistory, type VolumeSetHistory } from '../helpers/volume-set-history.js';

/** The `rewind` command as a user runs it, with nbdsh's python first on PATH for the probes. */
const rewind = (args: string[]): Promise<Ran> => run(process.execPath, [BIN, ...args], { env: { ...nbdshEnv(), REWIND_DEBUG: '' }, timeoutMs: 60_000 });

const DB = SET_VOLUMES[0];
const MARK = Buffer.from('BAD!');
/** Where the bad write lands: the last block of "db", which no other write touches. */
const MARK_AT = DB.size - 4096;

/** The probe: nbdsh fails when the marker is in the view. */
const PROBE = `import sys; sys.exit(1 if h.pread(${MARK.byteLength}, ${MARK_AT}) == b"${MARK.toString()}" else 0)`;

/** A store where write `bad` puts the marker into "db", and no other write reaches its block. */
function plantedAt(bad: number): Promise<VolumeSetHistory> {
  return volumeSetHistory({
    writes: 60, windowWrites: 10, unapplied: 5, seed: 5,
    shape: (seq, w) => {
      if (seq === bad) {
        w.volume = DB.name;
        w.offset = MARK_AT;
        w.data = Buffer.from(MARK);
      } else if (w.volume === DB.name && w.offset + w.data.byteLength > MARK_AT) {
        w.data = w.data.subarray(0, Math.max(1, MARK_AT - w.offset));
        if (w.offset >= MARK_AT) w.offset = 0;
      }
    },
  });
}

const has = requireTool('nbdsh');
let applied: VolumeSetHistory;
let tail: VolumeSetHistory;

beforeAll(async () => {
  applied = await plantedAt(23);
  tail = await plantedAt(58);
});
afterAll(() => {
  applied?.remove();
  tail?.remove();
});
afterEach(async (ctx) => stopAll(ctx));

/** Points the search may probe: --from, every write to db in between, --to. */
function maxProbes(h: VolumeSetHistory, from: number, to: number): number {
  const writes = h.model.writes.filter((w) => w.seq > from && w.seq < to && w.volume === DB.name).length;
  return 2 + Math.ceil(Math.log2(writes + 1));
}

describe.skipIf(!has)('rewind bisect with nbdsh as the probe', () => {
  it('names the first bad write in an applied window: seq, time, transaction, offset, length (JSON)', async () => {
    const r = await rewind(['bisect', applied.dir, '--volume', DB.name, '--json', '--', 'nbdsh', '-u', '{}', '-c', PROBE]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      volume: DB.name, seq: 23, time: new Date(applied.timeOfSeq[23]).toISOString(), tx: 3,
      offset: MARK_AT, length: MARK.byteLength, writeVolume: DB.name, exact: true, from: 0, to: applied.lastSeq,
    });
    expect(j.probes).toBeLessThanOrEqual(maxProbes(applied, 0, applied.lastSeq));
    // Each probe says what it found, on stderr.
    expect(r.stderr).toContain('bisect: seq 0 (--from): good (exit 0)');
    expect(r.stderr).toContain(`bisect: seq ${applied.lastSeq} (--to): bad (exit 1)`);
    expect(r.stderr.match(/^bisect: seq /gm)).toHaveLength(j.probes);
  });

  it('finds a write in the unapplied tail, with $REWIND_URI through a shell and --from/--to (text)', async () => {
    const script = `test "$1" = "$REWIND_URI" || exit 9; exec nbdsh -u "$REWIND_URI" -c '${PROBE}'`;
    const r = await rewind(['bisect', tail.dir, '--volume', DB.name, '--from', '30', '--to', '60', '--', 'sh', '-c', script, 'sh', '{}']);
    expect(r.code, r.stderr).toBe(0);
    const m = /^first bad write: seq 58 at (\S+), in a window not applied yet, volume db offset (\d+) length 4 \(4 B\) \(last good: seq (\d+); (\d+) probes over (\d+) points\)$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(m![1]).toBe(new Date(tail.timeOfSeq[58]).toISOString());
    expect(Number(m![2])).toBe(MARK_AT);
    expect(Number(m![4])).toBeLessThanOrEqual(maxProbes(tail, 30, 60));
  });

  it('takes its ends as times too (--from-time, --to-time: the point after every write stamped at or before)', async () => {
    const at = (seq: number) => new Date(applied.timeOfSeq[seq] + 500).toISOString();
    const r = await rewind(['bisect', applied.dir, '--volume', DB.name, '--from-time', at(10), '--to-time', at(40), '--json', '--', 'nbdsh', '-u', '{}', '-c', PROBE]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ seq: 23, exact: true, from: 10, to: 40 });
  });

  it('works alongside a running rewind serve (readers take no lock)', async () => {
    // The store as its writer left it when it died (the lock of a process that is gone), served again.
    const dir = `${applied.dir}-served`;
    fs.cpSync(applied.dir, dir, { recursive: true });
    fs.rmSync(`${dir}/rewind.lock`);
    const served = await startServe(dir);
    const r = await rewind(['bisect', dir, '--volume', DB.name, '--to', '40', '--json', '--', 'nbdsh', '-u', '{}', '-c', PROBE]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ seq: 23, exact: true, to: 40 });
    await served.stop();
  });
});

describe('rewind bisect: bad input exits 2 and says what to change', () => {
  it.each<[string, () => string[], RegExp]>([
    ['no command', () => ['--volume', 'db'], /give the command to run after --/],
    ['--from after --to', () => ['--volume', 'db', '--from', '30', '--to', '20', '--', 'true'], /--from seq 30 must come before --to seq 20/],
    ['--to after the newest write', () => ['--volume', 'db', '--to', '61', '--', 'true'], /seq 61 is after the newest write \(seq 60\)/],
    ['--from after the newest write (no --to)', () => ['--volume', 'db', '--from', '99', '--', 'true'], /seq 99 is after the newest write \(seq 60\)/],
    ['--from and --from-time', () => ['--volume', 'db', '--from', '1', '--from-time', '2026-01-01T00:00:00Z', '--', 'true'], /give --from N or --from-time ISO, not both/],
    ['--to-time not a time', () => ['--volume', 'db', '--to-time', 'noon', '--', 'true'], /--to-time/],
    ['--to-time before the store', () => ['--volume', 'db', '--to-time', '2000-01-01T00:00:00Z', '--', 'true'], /before the oldest retained point/],
    ['--from not a number', () => ['--volume', 'db', '--from', 'x', '--', 'true'], /--from "x" must be a whole number/],
    ['an unknown volume', () => ['--volume', 'zz', '--', 'true'], /unknown volume "zz" \(volumes: db, logs, cfg\)/],
    ['a command that fails at --from', () => ['--volume', 'db', '--', 'false'], /the command already fails at --from seq 0 \(exit 1\): bisect needs --from at a point where it succeeds/],
    ['a command that succeeds at --to', () => ['--volume', 'db', '--to', '40', '--', 'true'], /the command succeeds at --to seq 40 \(exit 0\): nothing to find before it/],
    ['a command that cannot run', () => ['--volume', 'db', '--', '/nonexistent/probe'], /cannot run "\/nonexistent\/probe"/],
  ])('%s', async (_, args, message) => {
    const r = await rewind(['bisect', applied.dir, ...args()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('--volume is required', async () => {
    const r = await rewind(['bisect', applied.dir, '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("required option '--volume <name>' not specified");
  });

  it('leaves no socket directory or lease behind', async () => {
    const before = fs.readdirSync(process.env.TMPDIR ?? '/tmp').filter((f) => f.startsWith('rewind-view-')).length;
    const r = await rewind(['bisect', applied.dir, '--volume', 'db', '--to', '40', '--', 'true']);
    expect(r.code).toBe(2);
    expect(fs.readdirSync(process.env.TMPDIR ?? '/tmp').filter((f) => f.startsWith('rewind-view-')).length).toBe(before);
    expect(fs.existsSync(`${applied.dir}/leases`) ? fs.readdirSync(`${applied.dir}/leases`) : []).toEqual([]);
  });
});
