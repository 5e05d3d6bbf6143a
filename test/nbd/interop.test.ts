// The server against real NBD clients: libnbd's tools (nbdinfo, nbdcopy, nbdsh), qemu (qemu-img,
// qemu-io) and fio's nbd engine. Debian packages: libnbd-bin, python3-libnbd, qemu-utils, fio.
// A missing tool skips locally and fails in CI (see test/helpers/tools.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ExportProvider } from '../../src/nbd/export.js';
import { MemoryExportProvider } from '../../src/nbd/memory-export.js';
import { fioVerifyArgs, requireTool } from '../helpers/tools.js';
import { closeServers, KiB, MiB, pattern, serve } from './harness.js';

const CHILD_TIMEOUT_MS = 20_000;
const children = new Set<ChildProcess>();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rewind-nbd-interop-'));

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool with a hard timeout; never rejects. */
function run(cmd: string, args: string[], timeoutMs = CHILD_TIMEOUT_MS, env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: -1, signal: null, stdout, stderr: stderr + String(err) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function ok(r: Ran): Ran {
  if (r.code !== 0) throw new Error(`exit ${r.code} ${r.signal ?? ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** nbd:// URI; the export name is percent-encoded ('@' and '=' included), which every client decodes. */
const uri = (port: number, name: string) => `nbd://127.0.0.1:${port}/${encodeURIComponent(name).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await closeServers();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function provider(): MemoryExportProvider {
  return new MemoryExportProvider({
    disk0: { size: 4 * MiB, description: 'scratch disk' },
    'disk0@seq=12': { size: 1 * MiB, readOnly: true, data: pattern(1 * MiB, 12) },
  });
}

describe('libnbd tools', () => {
  it('nbdinfo --list shows every export with its size and description', async (ctx) => {
    if (!requireTool('nbdinfo')) ctx.skip();
    const { port } = await serve(provider());
    const out = JSON.parse(ok(await run('nbdinfo', ['--list', '--json', `nbd://127.0.0.1:${port}`])).stdout);
    const exports = Object.fromEntries(out.exports.map((e: Record<string, unknown>) => [e['export-name'], e]));
    expect(Object.keys(exports).sort()).toEqual(['disk0', 'disk0@seq=12']);
    expect(exports['disk0']).toMatchObject({ 'export-size': 4 * MiB, description: 'scratch disk', is_read_only: false, can_multi_conn: true });
    expect(exports['disk0@seq=12']).toMatchObject({ 'export-size': 1 * MiB, is_read_only: true });
  });

  it('nbdinfo describes one export named with @ and =, given percent-encoded or raw', async (ctx) => {
    if (!requireTool('nbdinfo')) ctx.skip();
    const { port } = await serve(provider());
    for (const u of [uri(port, 'disk0@seq=12'), `nbd://127.0.0.1:${port}/disk0@seq=12`]) {
      const out = JSON.parse(ok(await run('nbdinfo', ['--json', u])).stdout);
      expect(out.exports[0]).toMatchObject({
        'export-name': 'disk0@seq=12',
        'export-size': 1 * MiB,
        is_read_only: true,
        can_flush: true,
        block_size_minimum: 1,
        block_size_preferred: 4096,
        block_size_maximum: 32 * MiB,
      });
    }
    const missing = await run('nbdinfo', [uri(port, 'nope')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/opt_go.*No such file or directory for export: nope/); // NBD_REP_ERR_UNKNOWN
  });

  it('nbdcopy writes a random image into an export and reads it back identical', async (ctx) => {
    if (!requireTool('nbdcopy')) ctx.skip();
    const p = provider();
    const { port } = await serve(p);
    const image = randomBytes(4 * MiB);
    const src = path.join(tmp, 'src.img');
    const back = path.join(tmp, 'back.img');
    writeFileSync(src, image);
    ok(await run('nbdcopy', ['--flush', src, uri(port, 'disk0')]));
    expect(p.bytes('disk0').equals(image)).toBe(true);
    ok(await run('nbdcopy', [uri(port, 'disk0'), back]));
    expect(readFileSync(back).equals(image)).toBe(true);
  });

  it('a read-only export answers a write with EPERM (nbdsh, libnbd strict mode off)', async (ctx) => {
    if (!requireTool('nbdsh')) ctx.skip();
    const p = provider();
    const { port } = await serve(p);
    const script = [
      'h.set_strict_mode(0)',
      `h.connect_uri(${JSON.stringify(uri(port, 'disk0@seq=12'))})`,
      'try:',
      "    h.pwrite(b'x' * 512, 0)",
      "    print('WROTE')",
      'except nbd.Error as e:',
      "    print('ERROR', e.errno, e.string)",
    ].join('\n');
    // nbdsh runs `python3`; prefer the system one, which has the nbd module.
    const r = ok(await run('nbdsh', ['-c', script], CHILD_TIMEOUT_MS, { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` }));
    expect(r.stdout).toMatch(/^ERROR EPERM .*command failed: Operation not permitted/m);
    expect(p.bytes('disk0@seq=12').equals(pattern(1 * MiB, 12))).toBe(true);
  });
});

describe('qemu', () => {
  it('qemu-img converts an image into an export and compares it identical', async (ctx) => {
    if (!requireTool('qemu-img')) ctx.skip();
    const p = provider();
    const { port } = await serve(p);
    const image = randomBytes(4 * MiB);
    image.fill(0, MiB, 2 * MiB); // a zero run qemu may send as WRITE_ZEROES
    const src = path.join(tmp, 'qsrc.img');
    writeFileSync(src, image);
    ok(await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, uri(port, 'disk0')]));
    expect(p.bytes('disk0').equals(image)).toBe(true);
    ok(await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, uri(port, 'disk0')]));
  });

  it('qemu-io writes, zeroes, discards and verifies patterns; reads the read-only export', async (ctx) => {
    if (!requireTool('qemu-io')) ctx.skip();
    const p = provider();
    const { port } = await serve(p);
    const cmds = [
      'write -P 0xab 0 64k',
      'write -f -P 0xcd 4k 4k', // FUA
      'read -P 0xab 0 4k',
      'read -P 0xcd 4k 4k',
      'read -P 0xab 8k 56k',
      'write -z 64k 64k',
      'read -P 0 64k 64k',
      'write -P 0x11 1000 3000', // unaligned
      'read -P 0x11 1000 3000',
      'discard 128k 4k',
      'flush',
      'aio_write -P 0x22 1M 64k',
      'aio_write -P 0x33 2M 64k',
      'aio_flush',
      'read -P 0x22 1M 64k',
      'read -P 0x33 2M 64k',
    ];
    const r = ok(await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri(port, 'disk0')]));
    expect(r.stdout + r.stderr).not.toMatch(/verification failed|error|fail/i);
    expect(p.bytes('disk0').subarray(1000, 4000).equals(Buffer.alloc(3000, 0x11))).toBe(true);
    const ro = ok(await run('qemu-io', ['-f', 'raw', '-r', '-c', 'read -v 0 16', uri(port, 'disk0@seq=12')]));
    expect(ro.stdout).toContain(pattern(16, 12).subarray(0, 4).toString('hex').replace(/(..)/g, '$1 ').trim());
    // qemu itself refuses to open a read-only export for writing.
    const rw = await run('qemu-io', ['-f', 'raw', '-c', 'write 0 512', uri(port, 'disk0@seq=12')]);
    expect(rw.code).not.toBe(0);
  });

  it('qemu-io sees an export error as the matching errno', async (ctx) => {
    if (!requireTool('qemu-io')) ctx.skip();
    const base = new MemoryExportProvider({ d: { size: 1 * MiB } });
    const p: ExportProvider = {
      list: () => base.list(),
      open: (name) => ({
        ...base.open(name),
        write: () => {
          throw Object.assign(new Error('volume is sealed'), { code: 'EPERM' });
        },
      }),
    };
    const { port, logs } = await serve(p);
    const r = await run('qemu-io', ['-f', 'raw', '-c', 'write 0 4k', uri(port, 'd')]);
    expect(r.stdout + r.stderr).toMatch(/write failed: Operation not permitted/);
    expect(logs.join('\n')).toMatch(/export "d" command 1 at 0\+4096 failed \(EPERM\): volume is sealed/);
  });
});

describe('fio', () => {
  it('random 4k writes at iodepth 16 verify with crc32c', async (ctx) => {
    if (!requireTool('fio')) ctx.skip();
    const p = provider();
    const { port } = await serve(p);
    const r = ok(
      await run('fio', fioVerifyArgs(uri(port, 'disk0'))),
    );
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    const job = json.jobs[0];
    expect(job.error).toBe(0);
    expect(job.write.total_ios).toBe(1024);
    expect(job.read.io_bytes).toBeGreaterThanOrEqual(4 * MiB); // the verify pass read it all back
    expect(p.stats.writes).toBeGreaterThanOrEqual(1024);
  });
});

void KiB;
