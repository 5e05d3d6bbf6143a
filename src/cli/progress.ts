// Progress for long work, shown only on a terminal (stderr), so scripts and pipes see clean output.
import cliProgress from 'cli-progress';
import { formatBytes } from '../units.js';

export interface ProgressBar {
  update(done: number, total: number): void;
  stop(): void;
}

export function progressBar(label: string, enabled = process.stderr.isTTY === true): ProgressBar {
  if (!enabled) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {doneText} of {totalText} | {eta_formatted} left`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 64,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0, { doneText: formatBytes(0), totalText: formatBytes(total) });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { doneText: formatBytes(done), totalText: formatBytes(total) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
