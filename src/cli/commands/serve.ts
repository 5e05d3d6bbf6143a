import type { Io } from '../main.js';
import { Store, initStore } from '../../store.js';
import { StoreExports } from '../../serve/exports.js';
import { startNbdServer, type NbdServer } from '../../nbd/server.js';
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

export async function serveCommand(io: Io, store: string, opts: { listen: string; socket?: string; maxConnections: string; threads?: string }): Promise<number> {
  const listen = parseListen(opts.listen);
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
    servers.push(await startNbdServer({ provider, listen, maxConnections, log: (m) => io.err(`nbd: ${m}\n`) }));
    if (opts.socket) servers.push(await startNbdServer({ provider, socketPath: opts.socket, maxConnections, log: (m) => io.err(`nbd: ${m}\n`) }));
  } catch (err) {
    await Promise.all(servers.map((x) => x.close({ graceful: false })));
    await s.close();
    throw err;
  }
  const names = s.volumes.names().join(', ');
  io.err(`rewind: serving ${store} on nbd://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${(servers[0].address() as { port: number }).port}${opts.socket ? ` and ${opts.socket}` : ''} (exports: ${names}; past points: <volume>@seq=<N>, <volume>@time=<ISO>)\n`);
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
