// `rewind serve`: the store's volumes and their past points over NBD, and optionally its metrics over
// HTTP, until SIGINT/SIGTERM.
import type { Io } from '../io.js';
import { initStore } from '../../store/init.js';
import { Store } from '../../store/store.js';
import { StoreExports } from '../../serve/exports.js';
import { startMetricsServer, type MetricsServer } from '../../serve/metrics.js';
import { startNbdServer, type NbdServer } from '../../nbd/server.js';
import { nodeStorage } from '../../storage/node-storage.js';
import { joinPath } from '../../storage/storage.js';
import { badArgument } from '../../errors.js';
import { isLoopback, parseListen, parseWholeNumber, tlsFromOptions, type TlsFlags } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { TierShipping } from '../../tier/shipping.js';

/** The store `rewind serve` creates when it finds none: one 1 GiB volume. */
export const DEFAULT_VOLUME = { name: 'disk0', size: 2 ** 30 };

/** How often serve reads rewind.json again for a retention or capacity changed by `rewind config`. */
export const CONFIG_RELOAD_MS = 2000;

export interface ServeOptions extends TlsFlags {
  listen: string;
  socket?: string;
  maxConnections: string;
  threads?: string;
  insecure?: boolean;
  metrics?: string;
}

/** `--metrics HOST:PORT` (or a bare PORT, on loopback), checked by the same rule as --listen. */
function metricsAddress(io: Io, opts: ServeOptions): { host: string; port: number } | null {
  if (opts.metrics === undefined) return null;
  const text = opts.metrics.trim();
  const addr = /^\d+$/.test(text) ? parseListen(`127.0.0.1:${text}`, '--metrics') : parseListen(text, '--metrics', '127.0.0.1:9100');
  if (!isLoopback(addr.host)) {
    if (!opts.insecure) {
      throw badArgument(
        `--metrics ${opts.metrics} is not a loopback address, and the metrics page has no authentication: anyone who can connect sees the store's volumes and write activity; ` +
          'give a loopback address (127.0.0.1:PORT) and scrape through a proxy, or --insecure to serve it there anyway',
      );
    }
    io.err(`rewind: warning: serving metrics without authentication on ${addr.host} (--insecure)\n`);
  }
  return addr;
}

const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

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
  const metricsListen = metricsAddress(io, opts);
  const tlsSetting = tlsOptions ?? undefined;
  const maxConnections = parseWholeNumber(opts.maxConnections, '--max-connections');
  const threads = opts.threads !== undefined ? parseWholeNumber(opts.threads, '--threads') : undefined;
  if (!nodeStorage.exists(joinPath(store, 'rewind.json'))) {
    await initStore(store, { volumes: [DEFAULT_VOLUME] });
    io.err(`created store ${store} with volume ${DEFAULT_VOLUME.name} (1 GiB)\n`);
  }
  const warn = (m: string) => io.err(`rewind: ${m}\n`);
  // With a tier set up, the store keeps what is not shipped from the moment it opens.
  const tier = TierShipping.prepare(store, warn);
  const s = await Store.open(store, { threads, onWarning: warn, historyHold: tier?.hold });
  tier?.start(s);
  if (tier) warn(`shipping history to ${tier.location}`);
  const provider = new StoreExports(s);
  const servers: NbdServer[] = [];
  let metrics: MetricsServer | null = null;
  try {
    if (metricsListen) {
      metrics = await startMetricsServer({ status: () => s.status(), writeCounts: () => s.writeCounts(), consolidatedBytes: () => s.consolidatedBytes(), tier: () => tier?.figures() ?? null }, metricsListen);
      io.err(`rewind: metrics on http://${hostPort(metricsListen.host, metrics.address().port)}/metrics\n`);
    }
    servers.push(await startNbdServer({ provider, listen, maxConnections, tls: tlsSetting, log: (m) => io.err(`nbd: ${m}\n`) }));
    if (opts.socket) servers.push(await startNbdServer({ provider, socketPath: opts.socket, maxConnections, tls: tlsSetting, log: (m) => io.err(`nbd: ${m}\n`) }));
  } catch (err) {
    await Promise.all(servers.map((x) => x.close({ graceful: false })));
    await metrics?.close();
    await tier?.stop();
    await s.close();
    throw err;
  }
  // Reports a change (or a file it cannot use) through onWarning, on stderr.
  const reload = setInterval(() => s.reloadConfig(), CONFIG_RELOAD_MS);
  reload.unref();
  const names = s.volumes.names().join(', ');
  io.err(`rewind: serving ${store} on ${tlsOptions ? 'nbds' : 'nbd'}://${hostPort(listen.host, (servers[0].address() as { port: number }).port)}${opts.socket ? ` and ${opts.socket}` : ''} (exports: ${names}; past points: <volume>@seq=<N>, <volume>@time=<ISO>${tlsOptions ? `; TLS required${tlsOptions.requireClientCert ? ', client certificates verified' : ''}` : ''})\n`);
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
  clearInterval(reload);
  await Promise.all(servers.map((x) => x.close({ graceful: true })));
  await metrics?.close();
  if (tier) {
    // Every window applied first, so the last shipping pass reaches the last write.
    await s.settle();
    await tier.stop();
  }
  await s.close();
  io.err('rewind: closed cleanly\n');
  return EXIT.OK;
}
