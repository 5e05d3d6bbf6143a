// Shared set-up for NBD tests: a server on 127.0.0.1, an ephemeral port, closed after each test.

import { startNbdServer, type NbdServer, type NbdServerOptions } from '../../src/nbd/server.js';
import type { ExportProvider } from '../../src/nbd/export.js';

export { until } from '../helpers/until.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

const servers = new Set<NbdServer>();

export async function serve(provider: ExportProvider, opts: Partial<NbdServerOptions> = {}): Promise<{ server: NbdServer; port: number; logs: string[] }> {
  const logs: string[] = [];
  const server = await startNbdServer({ provider, listen: { host: '127.0.0.1', port: 0 }, log: (m) => logs.push(m), ...opts });
  servers.add(server);
  const addr = server.address();
  return { server, port: 'port' in addr ? addr.port : -1, logs };
}

/** For afterEach: closes every server started by serve() (not gracefully: tests may leave clients hanging). */
export async function closeServers(): Promise<void> {
  const all = [...servers];
  servers.clear();
  await Promise.all(all.map((s) => s.close({ graceful: false })));
}

export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
