// Reopening after a crash against volume size: a writer (a child process) on a sparse volume of
// 64 MiB or 16 GiB makes the same writes (random 4 KiB, half of them applied in windows, the other
// half still in flight: journaled and flushed, not applied) and is killed with SIGKILL. The time
// `Store.open` takes then (recovery included) is measured in this process:
// - after the kill (same boot): production rebuilt only where the journal's tail says;
// - after a "reboot" (the lock file's boot id changed, as a power loss would leave it): every volume
//   rebuilt in full from the replica, what every unclean stop cost before the dirty-region rebuild;
// - after a clean close, for reference (no rebuild at all).
//
// Run alone: npm run build && node dist/bench/recovery.js [--quick]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initStore, Store } from '../src/index.js';
import { LOCK_FILE } from '../src/lock.js';
import { fixed } from './format.js';
import { isMain } from './main-module.js';
import { root, settleDisk } from './servers.js';

export interface RecoveryRow {
  volumeBytes: number;
  /** Writes in flight (journaled, not applied) when the writer was killed; as many were applied before. */
  inFlight: number;
  cleanOpenMs: number;
  killOpenMs: number;
  /** Null when not measured (16 GiB in --quick: it writes the whole volume). */
  rebootOpenMs: number | null;
}

const WRITE_BYTES = 4096;

const CHILD = `
import { Store } from ${JSON.stringify(join(root, 'dist/src/index.js'))};
import { prng } from ${JSON.stringify(join(root, 'dist/src/prng.js'))};
const [dir, size, n, seed] = process.argv.slice(1).map((a, i) => (i === 0 ? a : Number(a)));
const store = await Store.open(dir, { threads: 1 });
const rand = prng(seed);
const buf = Buffer.alloc(${WRITE_BYTES});
const write = () => { buf.fill(1 + Math.floor(rand() * 255)); return store.write('v', Math.floor(rand() * (size / ${WRITE_BYTES})) * ${WRITE_BYTES}, buf); };
for (let i = 0; i < n; i++) await write();
store.markWindow();
await store.settle();
for (let i = 0; i < n; i++) await write();
await store.flush();
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);
`;

/** Runs the writer on `dir` and kills it once its writes are in. */
async function writeAndKill(dir: string, size: number, n: number, seed: number): Promise<void> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dir, String(size), String(n), String(seed)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((done, fail) => {
    child.once('exit', (code) => fail(new Error(`writer exited (${code}) before its writes were in`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) done();
    });
  });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function timedOpen(dir: string): Promise<number> {
  settleDisk();
  const t0 = performance.now();
  const store = await Store.open(dir, { threads: 1, autoLifecycle: false });
  const ms = performance.now() - t0;
  await store.close();
  return ms;
}

export async function benchRecovery(opts: { quick?: boolean; log?: (m: string) => void } = {}): Promise<RecoveryRow[]> {
  const inFlight = opts.quick ? 1000 : 4000;
  const rows: RecoveryRow[] = [];
  for (const size of [64 * 2 ** 20, 16 * 2 ** 30]) {
    const base = mkdtempSync(join(tmpdir(), 'rewind-bench-recovery-'));
    const dir = join(base, 'store');
    try {
      await initStore(dir, { volumes: [{ name: 'v', size }], window: 'marker' });
      await writeAndKill(dir, size, inFlight, 1);
      const killOpenMs = await timedOpen(dir);
      const cleanOpenMs = await timedOpen(dir);
      let rebootOpenMs: number | null = null;
      if (!opts.quick || size <= 2 ** 30) {
        await writeAndKill(dir, size, inFlight, 2);
        const lock = join(dir, LOCK_FILE);
        const [pid] = readFileSync(lock, 'utf8').split('\n');
        writeFileSync(lock, `${pid}\n00000000-0000-0000-0000-000000000000\n`);
        rebootOpenMs = await timedOpen(dir);
      }
      rows.push({ volumeBytes: size, inFlight, cleanOpenMs, killOpenMs, rebootOpenMs });
      opts.log?.(`recovery: ${size / 2 ** 20} MiB: open after kill ${killOpenMs.toFixed(0)} ms, after a reboot ${rebootOpenMs?.toFixed(0) ?? '-'} ms, clean ${cleanOpenMs.toFixed(0)} ms`);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }
  return rows;
}

export function printRecovery(rows: RecoveryRow[]): void {
  const small = rows[0];
  console.table(rows.map((r) => ({
    volume: r.volumeBytes >= 2 ** 30 ? `${r.volumeBytes / 2 ** 30} GiB` : `${r.volumeBytes / 2 ** 20} MiB`,
    'writes in flight (+ as many applied)': r.inFlight,
    'open after kill -9, ms': fixed(r.killOpenMs, 0),
    'vs 64 MiB': fixed(r.killOpenMs / small.killOpenMs, 2),
    'open after a reboot (full rebuild), ms': fixed(r.rebootOpenMs, 0),
    'clean open, ms': fixed(r.cleanOpenMs, 0),
  })));
}

if (isMain(import.meta.url)) {
  const rows = await benchRecovery({ quick: process.argv.includes('--quick'), log: (m) => console.log(m) });
  printRecovery(rows);
}
