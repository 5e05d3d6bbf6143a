import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Io } from '../main.js';
import { initStore } from '../../store/init.js';
import { Store } from '../../store/store.js';
import { StoreExports } from '../../serve/exports.js';
import { startNbdServer, type NbdServer, type NbdTlsOptions } from '../../nbd/server.js';
import { nodeStorage } from '../../storage/node-storage.js';
import { joinPath } from '../../storage/storage.js';
import { badArgument } from '../../errors.js';
import { parseWholeNumber } from '../args.js';
import { EXIT } from '../exit-codes.js';

/** The store `rewind serve` creates when it finds none: one 1 GiB volume. */
export const DEFAULT_VOLUME = { name: 'disk0', size: 2 ** 30 };

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text.trim());
  if (!m) throw badArgument(`--listen "${text}" must be HOST:PORT (e.g. 127.0.0.1:10809)`);
  const port = Number(m[3]);
  if (port > 65535) throw badArgument(`--listen port ${port} is not a TCP port`);
  return { host: m[1] ?? m[2], port };
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and "localhost". */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  if (net.isIPv6(h)) return /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(h) || h === '0:0:0:0:0:0:0:1';
  return false;
}

export interface ServeOptions {
  listen: string;
  socket?: string;
  maxConnections: string;
  threads?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsVerifyClient?: boolean;
  insecure?: boolean;
}

function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw badArgument(`${flag} ${file}: cannot read it (${(err as Error).message})`);
  }
}

/**
 * The TLS settings from --tls-cert/--tls-key/--tls-ca/--tls-verify-client (null: no TLS), checked
 * before anything is opened: files readable, PEM valid, key matching the certificate.
 */
export function tlsFromOptions(opts: ServeOptions): NbdTlsOptions | null {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw badArgument('--tls-cert and --tls-key go together: give both (PEM files) or neither');
  if (opts.tlsCert === undefined) {
    if (opts.tlsCa !== undefined || opts.tlsVerifyClient) throw badArgument('--tls-ca and --tls-verify-client need --tls-cert and --tls-key');
    return null;
  }
  if (opts.tlsVerifyClient && opts.tlsCa === undefined) throw badArgument('--tls-verify-client needs --tls-ca FILE: the CA that client certificates must be signed by');
  const t: NbdTlsOptions = {
    cert: readPem(opts.tlsCert, '--tls-cert'),
    key: readPem(opts.tlsKey!, '--tls-key'),
    ca: opts.tlsCa !== undefined ? readPem(opts.tlsCa, '--tls-ca') : undefined,
    requireClientCert: opts.tlsVerifyClient === true,
    required: true,
  };
  try {
    tls.createSecureContext({ cert: t.cert, key: t.key, ca: t.ca });
  } catch (err) {
    throw badArgument(`--tls-cert/--tls-key/--tls-ca: not a usable PEM certificate, key and CA (${(err as Error).message})`);
  }
  return t;
}

export async function serveCommand(io: Io, store: string, opts: ServeOptions): Promise<number> {
  const listen = parseListen(opts.listen);
  const tlsOptions = tlsFromOptions(opts);
  if (tlsOptions === null && !isLoopback(listen.host)) {
    if (!opts.insecure) {
      throw badArgument(
        `--listen ${opts.listen} is not a loopback address, and NBD without TLS sends every block in clear text to anyone who can connect: ` +
          'give --tls-cert FILE --tls-key FILE (and --tls-ca FILE --tls-verify-client to require client certificates), or --insecure to serve plain NBD anyway',
      );
    }
    io.err(`rewind: warning: serving plain NBD (no TLS) on ${listen.host} (--insecure): anyone who can reach it can read and write every volume\n`);
  }
  const tlsSetting = tlsOptions ?? undefined;
  const maxConnections = parseWholeNumber(opts.maxConnections, '--max-connections');
  const threads = opts.threads !== undefined ? parseWholeNumber(opts.threads, '--threads') : undefined;
  if (!nodeStorage.exists(joinPath(store, 'rewind.json'))) {
    await initStore(store, { volumes: [DEFAULT_VOLUME] });
    io.err(`created store ${store} with volume ${DEFAULT_VOLUME.name} (1 GiB)\n`);
  }
  const s = await Store.open(store, { threads, onWarning: (m) => io.err(`rewind: ${m}\n`) });
  const provider = new StoreExports(s);
  const servers: NbdServer[] = [];
  try {
    servers.push(await startNbdServer({ provider, listen, maxConnections, tls: tlsSetting, log: (m) => io.err(`nbd: ${m}\n`) }));
    if (opts.socket) servers.push(await startNbdServer({ provider, socketPath: opts.socket, maxConnections, tls: tlsSetting, log: (m) => io.err(`nbd: ${m}\n`) }));
  } catch (err) {
    await Promise.all(servers.map((x) => x.close({ graceful: false })));
    await s.close();
    throw err;
  }
  const names = s.volumes.names().join(', ');
  io.err(`rewind: serving ${store} on ${tlsOptions ? 'nbds' : 'nbd'}://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${(servers[0].address() as { port: number }).port}${opts.socket ? ` and ${opts.socket}` : ''} (exports: ${names}; past points: <volume>@seq=<N>, <volume>@time=<ISO>${tlsOptions ? `; TLS required${tlsOptions.requireClientCert ? ', client certificates verified' : ''}` : ''})\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      io.err(`rewind: ${sig}: finishing requests in flight, flushing, closing\n`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await Promise.all(servers.map((x) => x.close({ graceful: true })));
  await s.close();
  io.err('rewind: closed cleanly\n');
  return EXIT.OK;
}
