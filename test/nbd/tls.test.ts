// TLS (GitHub issue 5, item 7): NBD_OPT_STARTTLS with certificate files, FORCEDTLS when required,
// and `rewind serve` refusing plain NBD on non-loopback addresses. Certificates (a CA, a server
// certificate for localhost/127.0.0.1, a client certificate) are made with openssl in beforeAll;
// libnbd's tools read ca-cert.pem (and client-cert.pem/client-key.pem) from a tls-certificates dir.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryExportProvider } from '../../src/nbd/memory-export.js';
import { requireTool } from '../helpers/tools.js';
import { BIN, rewind, run, tempDir, removeTempDirs } from '../serve/harness.js';
import { closeServers, MiB, pattern, serve, until } from './harness.js';
import { RawClient } from './raw-client.js';

const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7 };
const REP = { ACK: 1, SERVER: 2, ERR_UNSUP: 0x80000001, ERR_INVALID: 0x80000003, ERR_TLS_REQD: 0x80000005 };

const tmp = mkdtempSync(path.join(os.tmpdir(), 'rewind-nbd-tls-'));
const pki = path.join(tmp, 'pki');
/** tls-certificates dir with only the CA: enough to verify the server. */
const caDir = path.join(tmp, 'ca-only');
/** tls-certificates dir with the CA and a client certificate. */
const clientDir = path.join(tmp, 'with-client');
let haveOpenssl = false;
const pem = (name: string) => readFileSync(path.join(pki, name));

beforeAll(() => {
  haveOpenssl = requireTool('openssl');
  if (!haveOpenssl) return;
  mkdirSync(pki);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=rewind test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, cn: string, ext: string) => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(path.join(pki, `${name}.ext`), ext);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${name}-cert.pem`, '-days', '2', '-extfile', `${name}.ext`);
  };
  leaf('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n');
  leaf('client', 'rewind test client', 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n');
  mkdirSync(caDir);
  mkdirSync(clientDir);
  copyFileSync(path.join(pki, 'ca-cert.pem'), path.join(caDir, 'ca-cert.pem'));
  for (const f of ['ca-cert.pem', 'client-cert.pem', 'client-key.pem']) copyFileSync(path.join(pki, f), path.join(clientDir, f));
});

const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  await closeServers();
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeTempDirs();
});

function provider(): MemoryExportProvider {
  return new MemoryExportProvider({ disk0: { size: 4 * MiB, description: 'scratch disk' }, 'disk0@seq=3': { size: 1 * MiB, readOnly: true } });
}

function tlsOptions(extra: { requireClientCert?: boolean; required?: boolean } = {}) {
  return { cert: pem('server-cert.pem'), key: pem('server-key.pem'), ca: pem('ca-cert.pem'), required: true, ...extra };
}

const nbds = (port: number, name: string, dir = caDir) => `nbds://localhost:${port}/${name}?tls-certificates=${dir}`;

/** Skips unless openssl and the given tools are there (fails in CI if one is missing). */
function need(ctx: { skip: () => void }, ...tools: string[]): void {
  if (!haveOpenssl || !tools.every((t) => requireTool(t))) ctx.skip();
}

describe('NBD_OPT_STARTTLS with libnbd clients', () => {
  it('nbdinfo --list over nbds:// lists every export; a plain nbd:// client is refused with "requires TLS"', async (ctx) => {
    need(ctx, 'nbdinfo');
    const { port, logs } = await serve(provider(), { tls: tlsOptions() });
    const listed = await run('nbdinfo', ['--list', '--json', nbds(port, '')]);
    expect(listed.code, listed.stderr).toBe(0);
    const names = (JSON.parse(listed.stdout) as { exports: { 'export-name': string }[] }).exports.map((e) => e['export-name']).sort();
    expect(names).toEqual(['disk0', 'disk0@seq=3']);

    // The server's message reaches libnbd's debug output; the command fails either way.
    const env = { ...process.env, LIBNBD_DEBUG: '1' };
    const plain = await run('nbdinfo', [`nbd://127.0.0.1:${port}/disk0`], { env });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toContain('server requires TLS');
    const plainList = await run('nbdinfo', ['--list', `nbd://127.0.0.1:${port}`], { env });
    expect(plainList.code).not.toBe(0);
    expect(plainList.stderr).toContain('server requires TLS');
    expect(logs.filter((l) => /TLS handshake failed/.test(l))).toEqual([]);
  });

  it('nbdcopy through nbds:// writes an image and reads it back, bit for bit', async (ctx) => {
    need(ctx, 'nbdcopy');
    const p = provider();
    const { port } = await serve(p, { tls: tlsOptions() });
    const image = pattern(4 * MiB, 7);
    const src = path.join(tmp, 'src.img');
    const back = path.join(tmp, 'back.img');
    writeFileSync(src, image);
    const up = await run('nbdcopy', [src, nbds(port, 'disk0')]);
    expect(up.code, up.stderr).toBe(0);
    expect(p.bytes('disk0').equals(image)).toBe(true);
    const down = await run('nbdcopy', [nbds(port, 'disk0'), back]);
    expect(down.code, down.stderr).toBe(0);
    expect(readFileSync(back).equals(image)).toBe(true);
  });

  it('with requireClientCert, only a client with a certificate from the CA gets in', async (ctx) => {
    need(ctx, 'nbdinfo');
    const { port, logs } = await serve(provider(), { tls: tlsOptions({ requireClientCert: true }) });
    const without = await run('nbdinfo', ['--list', nbds(port, '', caDir)]);
    expect(without.code).not.toBe(0);
    const withCert = await run('nbdinfo', ['--list', nbds(port, '', clientDir)]);
    expect(withCert.code, withCert.stderr).toBe(0);
    expect(withCert.stdout).toContain('disk0');
    expect(logs.some((l) => /TLS handshake failed/.test(l))).toBe(true);
  });

  it('with required: false (TLS offered), plain and TLS clients both get in', async (ctx) => {
    need(ctx, 'nbdinfo');
    const { port } = await serve(provider(), { tls: tlsOptions({ required: false }) });
    expect((await run('nbdinfo', [`nbd://127.0.0.1:${port}/disk0`])).code).toBe(0);
    const secure = await run('nbdinfo', [nbds(port, 'disk0')]);
    expect(secure.code, secure.stderr).toBe(0);
    expect(secure.stdout).toContain('with TLS');
  });
});

describe('NBD_OPT_STARTTLS on the wire', () => {
  it('before TLS: LIST, INFO and GO get NBD_REP_ERR_TLS_REQD, EXPORT_NAME closes; after STARTTLS everything works over TLS', async (ctx) => {
    need(ctx);
    const p = provider();
    const { port, server } = await serve(p, { tls: tlsOptions() });
    const c = await RawClient.connect(port);
    await c.start();
    for (const [opt, data] of [[OPT.LIST, Buffer.alloc(0)], [OPT.INFO, RawClient.infoData('disk0')], [OPT.GO, RawClient.infoData('disk0')], [99, Buffer.alloc(0)]] as const) {
      c.sendOption(opt, data);
      const r = await c.optionReply();
      expect([r.option, r.type]).toEqual([opt, REP.ERR_TLS_REQD]);
      expect(r.data.toString()).toContain('requires TLS');
    }
    c.sendOption(OPT.STARTTLS, Buffer.from([1]));
    expect((await c.optionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.STARTTLS);
    expect(await c.optionReply()).toMatchObject({ option: OPT.STARTTLS, type: REP.ACK });

    const secure = tls.connect({ socket: c.socket, ca: pem('ca-cert.pem'), servername: 'localhost' });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    const t = RawClient.over(secure);
    t.sendOption(OPT.STARTTLS);
    expect((await t.optionReply()).type).toBe(REP.ERR_INVALID); // TLS already active
    t.sendOption(OPT.LIST);
    const listed = await t.optionReplies();
    expect(listed.map((r) => r.type)).toEqual([REP.SERVER, REP.SERVER, REP.ACK]);
    const { size } = await t.go('disk0');
    expect(size).toBe(4 * MiB);
    const block = pattern(64 * 1024, 3);
    expect((await t.writeAt(4096, block)).error).toBe(0);
    expect((await t.readAt(4096, block.length)).data!.equals(block)).toBe(true);
    expect(p.bytes('disk0').subarray(4096, 4096 + block.length).equals(block)).toBe(true);
    expect(await t.disconnect()).toBe(true);
    expect(server.readPaths()).toEqual({ buffer: 0, stream: 1 }); // TLS listeners read through 'data' events

    const e = await RawClient.connect(port);
    await e.start();
    e.sendOption(OPT.EXPORT_NAME, Buffer.from('disk0'));
    expect(await e.closedWithin()).toBe(true);
    expect(p.stats.opens).toBe(1);
  });

  it('a failed TLS handshake (client speaks plaintext after the ACK) closes the connection; the server keeps serving', async (ctx) => {
    need(ctx);
    const { port, logs, server } = await serve(provider(), { tls: tlsOptions(), handshakeTimeoutMs: 2000 });
    const c = await RawClient.connect(port);
    await c.start();
    c.sendOption(OPT.STARTTLS);
    expect((await c.optionReply()).type).toBe(REP.ACK);
    c.sendOption(OPT.LIST); // not a TLS record
    expect(await c.closedWithin()).toBe(true);
    expect(logs.some((l) => /TLS handshake failed/.test(l))).toBe(true);
    const again = await RawClient.connect(port);
    await again.start();
    again.sendOption(OPT.ABORT);
    expect((await again.optionReply()).type).toBe(REP.ACK);
    again.destroy();
    await until(() => server.connections() === 0);
  });
});

describe('rewind serve: TLS flags and the loopback rule', () => {
  /** Starts `rewind serve` and resolves with the port from its "serving" line (and that line). */
  function startServe(args: string[]): Promise<{ proc: ChildProcess; port: number; line: string }> {
    const proc = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(proc);
    let err = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "serving" line; stderr: ${err}`)), 15_000);
      proc.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /rewind: serving .* on (nbds?):\/\/[^:]+:(\d+).*$/m.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve({ proc, port: Number(m[2]), line: `${m[0]}\n${err}` });
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`rewind serve exited ${code}: ${err}`));
      });
    });
  }

  it('refuses a non-loopback --listen without TLS (exit 2, says why); --insecure serves it with a warning', async () => {
    const store = path.join(tempDir('rewind-tls-'), 'store');
    const refused = await rewind(['serve', store, '--listen', '0.0.0.0:0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/not a loopback address/);
    expect(refused.stderr).toMatch(/--tls-cert/);
    expect(refused.stderr).toMatch(/--insecure/);
    expect((await rewind(['serve', store, '--listen', '[::]:0'])).code).toBe(2);

    const s = await startServe([store, '--listen', '0.0.0.0:0', '--insecure']);
    expect(s.line).toMatch(/on nbd:\/\/0\.0\.0\.0:\d+/);
    expect(s.line).toMatch(/warning: serving plain NBD/);
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
  });

  it('checks the TLS flags before opening anything (exit 2)', async (ctx) => {
    need(ctx);
    const store = path.join(tempDir('rewind-tls-'), 'store');
    const cases: [string[], RegExp][] = [
      [['--tls-cert', path.join(pki, 'server-cert.pem')], /--tls-cert and --tls-key go together/],
      [['--tls-ca', path.join(pki, 'ca-cert.pem')], /need --tls-cert/],
      [['--tls-cert', path.join(pki, 'server-cert.pem'), '--tls-key', path.join(pki, 'server-key.pem'), '--tls-verify-client'], /--tls-verify-client needs --tls-ca/],
      [['--tls-cert', path.join(pki, 'server-cert.pem'), '--tls-key', path.join(pki, 'nope.pem')], /--tls-key .*nope\.pem: cannot read/],
      [['--tls-cert', path.join(pki, 'server-cert.pem'), '--tls-key', path.join(pki, 'client-key.pem')], /not a usable PEM/],
    ];
    for (const [flags, message] of cases) {
      const r = await rewind(['serve', store, '--listen', '127.0.0.1:0', ...flags]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it('with --tls-cert/--tls-key TLS is required on every listener (TCP, even loopback, and the Unix socket)', async (ctx) => {
    need(ctx, 'nbdinfo');
    const dir = tempDir('rewind-tls-');
    const store = path.join(dir, 'store');
    const sock = path.join(dir, 'nbd.sock');
    const s = await startServe([store, '--listen', '127.0.0.1:0', '--socket', sock, '--tls-cert', path.join(pki, 'server-cert.pem'), '--tls-key', path.join(pki, 'server-key.pem')]);
    expect(s.line).toMatch(/on nbds:\/\/127\.0\.0\.1:\d+/);
    const secure = await run('nbdinfo', [nbds(s.port, 'disk0')]);
    expect(secure.code, secure.stderr).toBe(0);
    expect(secure.stdout).toContain('with TLS');
    expect((await run('nbdinfo', [`nbd://127.0.0.1:${s.port}/disk0`])).code).not.toBe(0);
    expect((await run('nbdinfo', [`nbd+unix:///disk0?socket=${sock}`])).code).not.toBe(0);
    // Over a Unix socket libnbd does not check the server's name by default; the CA still applies.
    const unixTls = await run('nbdinfo', [`nbds+unix:///disk0?socket=${sock}&tls-certificates=${caDir}`]);
    expect(unixTls.code, unixTls.stderr).toBe(0);
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
  });
});
