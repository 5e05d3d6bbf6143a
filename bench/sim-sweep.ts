// The long crash-simulation sweep: `vitest run test/sim` with SIM_SEEDS set far above the test
// suite's default, in a child process, reporting seeds per second and the outcome. `npm test`
// runs few seeds to stay fast; this is where many run.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { root } from './servers.js';
import { isMain } from './main-module.js';
import { fixed } from './format.js';

export interface SimSweep {
  seeds: number;
  /** The simulation's own time (from its summary line), seconds; null if it printed none. */
  seconds: number | null;
  seedsPerSec: number | null;
  failedSeeds: number[];
  /** vitest's exit code: 0 only if every seed recovered correctly. */
  exitCode: number | null;
  /** The simulation's summary line: crashes by place, crashes during recovery, faults injected. */
  summary: string | null;
}

const SUMMARY = /crash simulation: (\d+) seeds,.*?(\d+) failed(?: \(seeds ([\d ]+)\))?, ([\d.]+) s/;

export async function benchSimSweep(opts: { seeds: number; log?: (m: string) => void }): Promise<SimSweep> {
  const log = opts.log ?? (() => {});
  const env: NodeJS.ProcessEnv = { ...process.env, SIM_SEEDS: String(opts.seeds) };
  delete env.SIM_SEED; // one seed would replace the sweep
  log(`sim: vitest run test/sim with SIM_SEEDS=${opts.seeds}`);
  const child = spawn(join(root, 'node_modules', '.bin', 'vitest'), ['run', 'test/sim'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const plain = out.replace(/\x1b\[[0-9;]*m/g, ''); // vitest colours its output
  const line = plain.split('\n').find((l) => l.includes('crash simulation:'))?.trim() ?? null;
  const m = line ? SUMMARY.exec(line) : null;
  if (exitCode !== 0) log(out.slice(-4000));
  const seconds = m ? Number(m[4]) : null;
  return {
    seeds: m ? Number(m[1]) : opts.seeds,
    seconds,
    seedsPerSec: m && seconds ? Number(m[1]) / seconds : null,
    failedSeeds: m?.[3] ? m[3].trim().split(' ').map(Number) : [],
    exitCode,
    summary: line,
  };
}

export function printSimSweep(r: SimSweep): void {
  console.log(r.summary ?? 'sim: no summary line (see the output above)');
  const verdict = r.exitCode === 0 ? 'all recovered' : `FAILED (exit ${r.exitCode}${r.failedSeeds.length ? `; replay with SIM_SEED=${r.failedSeeds[0]}` : ''})`;
  console.log(`sim: ${r.seeds} seeds in ${fixed(r.seconds, 1)} s, ${fixed(r.seedsPerSec, 2)} seeds/s: ${verdict}`);
}

if (isMain(import.meta.url)) {
  const r = await benchSimSweep({ seeds: Number(process.env.SIM_SEEDS ?? 500), log: (m) => console.log(m) });
  printSimSweep(r);
  process.exitCode = r.exitCode === 0 ? 0 : 1;
}
