// The writer's lock: one process at a time may write a store. The lock file holds the writer's pid
// and the machine's boot id; a lock left by a process that is gone means the store was not closed
// cleanly, and the boot id says whether the machine restarted since (a power loss, not just a kill).
import * as fs from 'node:fs';
import { RewindError } from './errors.js';
import { joinPath } from './storage/storage.js';

export const LOCK_FILE = 'rewind.lock';

export interface StoreLock {
  /** True when the previous writer did not close the store (crash or kill). */
  readonly unclean: boolean;
  /**
   * After an unclean stop: the last writer ran on this boot of the machine (a process crash or kill),
   * so every write it made is still in the page cache. False or absent when unknown or after a restart.
   */
  readonly sameBoot?: boolean;
  release(): void;
}

/** A process with this pid runs on this machine (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The id of this boot of the machine (Linux), or '' where the system does not say. */
export function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

export function acquireLock(dir: string): StoreLock {
  const path = joinPath(dir, LOCK_FILE);
  const boot = bootId();
  let unclean = false;
  let sameBoot = false;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(path, 'wx', 0o644);
      fs.writeSync(fd, `${process.pid}\n${boot}\n`);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      let released = false;
      return {
        unclean,
        sameBoot,
        release() {
          if (released) return;
          released = true;
          fs.rmSync(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const [pidLine, bootLine] = fs.readFileSync(path, 'utf8').split('\n');
      const pid = Number.parseInt(pidLine.trim(), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new RewindError('STORE_LOCKED', `store ${dir} is being written by process ${pid} (rewind serve?); read-only commands work alongside it`);
      }
      if (pid === process.pid) {
        throw new RewindError('STORE_LOCKED', `store ${dir} is already open for writing in this process`);
      }
      unclean = true;
      sameBoot = boot !== '' && bootLine?.trim() === boot;
      fs.rmSync(path, { force: true });
    }
  }
  throw new RewindError('STORE_LOCKED', `could not lock store ${dir}`);
}

/** The pid of a live writer holding the store, or null. */
export function liveWriter(dir: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(joinPath(dir, LOCK_FILE), 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}
