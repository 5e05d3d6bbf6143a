// Finds external tools (qemu-img, nbdinfo, fio, ...) for interop tests. Locally a missing tool
// skips the test; in CI (process.env.CI set) a missing tool fails it, so a runner without the
// packages cannot pass by skipping everything.

import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Debian package that provides each tool, for the error message. */
const PACKAGES: Record<string, string> = {
  nbdinfo: 'libnbd-bin',
  nbdcopy: 'libnbd-bin',
  nbdsh: 'python3-libnbd',
  'qemu-img': 'qemu-utils',
  'qemu-io': 'qemu-utils',
  'qemu-nbd': 'qemu-utils',
  fio: 'fio',
  nbdkit: 'nbdkit',
  openssl: 'openssl',
};

const found = new Map<string, string | null>();

/** Absolute path of an executable on PATH, or null. */
export function findTool(name: string): string | null {
  if (found.has(name)) return found.get(name)!;
  let result: string | null = null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      result = candidate;
      break;
    } catch {
      // not here
    }
  }
  found.set(name, result);
  return result;
}

/**
 * True if `name` is on PATH. If it is missing: throws when process.env.CI is set (the test fails
 * with the package to install), else returns false so the caller skips.
 */
export function requireTool(name: string): boolean {
  if (findTool(name) !== null) return true;
  const pkg = PACKAGES[name];
  const hint = pkg ? ` (apt-get install -y ${pkg})` : '';
  if (process.env.CI) throw new Error(`required tool "${name}" is not on PATH${hint}; CI must provide it`);
  return false;
}

/** fio arguments for random 4 KiB writes at queue depth 16 over 4 MiB of an NBD export, read back and checked with crc32c. */
export function fioVerifyArgs(uri: string, extra: string[] = []): string[] {
  return [
    '--name=verify', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=4m',
    '--verify=crc32c', '--do_verify=1', '--verify_fatal=1', '--verify_state_save=0', ...extra, '--output-format=json',
  ];
}
