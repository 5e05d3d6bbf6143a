// `rewind init --retain/--capacity` and `rewind config`, run as a user runs them (the real bin, which
// runs dist/: `npm run build` first). The contract: the policy given to init is stored and `config`
// prints it back (text: one line each; --json: retain, capacity, capacityBytes); `config` with flags
// changes only those two fields of rewind.json; `--retain all` / `--capacity none` return to the
// default; a bad spec exits 2 naming the term and changes nothing; a missing store exits 3.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { GiB, removeTempDirs, rewind, stopAll, tempDir } from '../helpers/processes.js';

afterEach(() => stopAll());
afterAll(removeTempDirs);

const SPEC = 'writes:1h,windows:24h,hourly:7d,daily:30d';
/** SPEC in normal form: each age in its largest whole unit. */
const SPEC_NORMAL = 'writes:1h,windows:1d,hourly:1w,daily:30d';

function newStorePath(): string {
  return path.join(tempDir('rewind-config-'), 'store');
}

async function configJson(store: string, ...flags: string[]): Promise<{ retain: string; capacity: string | null; capacityBytes: number | null }> {
  const r = await rewind(['config', store, ...flags, '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout.trim().split('\n')).toHaveLength(1);
  return JSON.parse(r.stdout);
}

describe('rewind init --retain --capacity', () => {
  it('stores the policy, and config prints it back', async () => {
    const store = newStorePath();
    const init = await rewind(['init', store, '--volume', 'a:1M', '--retain', SPEC, '--capacity', '2G']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`retain ${SPEC_NORMAL}`);
    expect(await configJson(store)).toEqual({ retain: SPEC_NORMAL, capacity: String(2 * GiB), capacityBytes: 2 * GiB });
    const text = await rewind(['config', store]);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(`retain   ${SPEC_NORMAL}\ncapacity ${2 * GiB} (2.00 GiB)\n`);
    const stored = JSON.parse(fs.readFileSync(path.join(store, 'rewind.json'), 'utf8'));
    expect(stored).toMatchObject({ retain: SPEC_NORMAL, capacity: String(2 * GiB) });
  });

  it('without them keeps everything with no bound, as before', async () => {
    const store = newStorePath();
    expect((await rewind(['init', store, '--volume', 'a:1M'])).code).toBe(0);
    expect(await configJson(store)).toEqual({ retain: 'all', capacity: null, capacityBytes: null });
    const stored = JSON.parse(fs.readFileSync(path.join(store, 'rewind.json'), 'utf8'));
    expect(stored).not.toHaveProperty('retain');
    expect(stored).not.toHaveProperty('capacity');
  });

  it('a share of the file system is resolved against its size', async () => {
    const store = newStorePath();
    expect((await rewind(['init', store, '--volume', 'a:1M', '--capacity', '50%'])).code).toBe(0);
    const c = await configJson(store);
    const fsStat = fs.statfsSync(store);
    expect(c).toEqual({ retain: 'all', capacity: '50%', capacityBytes: Math.floor((fsStat.blocks * fsStat.bsize) / 2) });
  });

  it.each([
    [['--retain', 'weekly:30d'], /"weekly" is not one of writes, windows, minutely, hourly, daily/],
    [['--retain', 'hourly:7d,windows:1d'], /terms go finest first.*"windows:1d"/],
    [['--retain', 'windows:2h,hourly:1h'], /"hourly:1h" must reach further back than "windows:2h"/],
    [['--retain', 'writes:soon'], /retention term "writes:soon": "soon" is not an age/],
    [['--capacity', '1M'], /capacity "1M" is below the minimum/],
    [['--capacity', '120%'], /capacity "120%".*at most 100%/],
  ])('refuses %j (exit 2) and creates nothing', async (flags, message) => {
    const store = newStorePath();
    const r = await rewind(['init', store, '--volume', 'a:1M', ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(fs.existsSync(store)).toBe(false);
  });
});

describe('rewind config', () => {
  it('has its own --help, naming both flags and that the last of two concurrent changes wins', async () => {
    const top = await rewind(['--help']);
    expect(top.stdout).toMatch(/^\s+config /m);
    const help = await rewind(['config', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: rewind config');
    for (const opt of ['--retain', '--capacity', '--json']) expect(help.stdout).toContain(opt);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('the last one wins');
  });

  it('changes only retain and capacity, prints the new values, and goes back to the default', async () => {
    const store = newStorePath();
    expect((await rewind(['init', store, '--volume', 'a:1M', '--volume', 'b:2M', '--window', 'count:10'])).code).toBe(0);
    const file = path.join(store, 'rewind.json');
    const before = JSON.parse(fs.readFileSync(file, 'utf8'));

    expect(await configJson(store, '--retain', SPEC)).toEqual({ retain: SPEC_NORMAL, capacity: null, capacityBytes: null });
    expect(await configJson(store, '--capacity', '1G')).toEqual({ retain: SPEC_NORMAL, capacity: String(GiB), capacityBytes: GiB });
    const set = await rewind(['config', store, '--retain', 'windows:1h,daily:7d', '--capacity', '512M']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe(`retain   windows:1h,daily:1w\ncapacity ${512 * 2 ** 20} (512 MiB)\n`);
    const changed = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(changed).toEqual({ ...before, retain: 'windows:1h,daily:1w', capacity: String(512 * 2 ** 20) });
    // No temp file is left beside it.
    expect(fs.readdirSync(store).filter((n) => n.startsWith('rewind.json'))).toEqual(['rewind.json']);

    expect(await configJson(store, '--retain', 'all', '--capacity', 'none')).toEqual({ retain: 'all', capacity: null, capacityBytes: null });
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(before);
  });

  it.each([
    [['--retain', 'daily:1d,hourly:1h'], /terms go finest first.*"hourly:1h"/],
    [['--retain', 'hourly:10m'], /retention term "hourly:10m" holds less than one hour period/],
    [['--capacity', 'lots'], /capacity: "lots" is not a size/],
  ])('refuses %j (exit 2) and changes nothing', async (flags, message) => {
    const store = newStorePath();
    expect((await rewind(['init', store, '--volume', 'a:1M', '--retain', 'windows:1d'])).code).toBe(0);
    const file = path.join(store, 'rewind.json');
    const before = fs.readFileSync(file);
    // A valid flag beside the bad one is not applied either.
    const r = await rewind(['config', store, '--capacity', '1G', '--retain', 'windows:1d', ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('on a missing store exits 3 and says it is not a store', async () => {
    const missing = path.join(tempDir('rewind-config-'), 'nope');
    for (const flags of [[], ['--retain', 'windows:1d']]) {
      const r = await rewind(['config', missing, ...flags]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`${missing} is not a rewind store`);
      expect(r.stdout).toBe('');
    }
    expect(fs.existsSync(missing)).toBe(false);
  });
});
