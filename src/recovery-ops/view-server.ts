// One volume's past, served read-only over NBD on a Unix socket of its own, for commands that probe
// it (`rewind bisect`). The point can be moved between probes: a connection opened afterwards sees
// the new point; each connection reads through a view of its own, leased (the writer keeps its point)
// until the connection ends. It takes no lock and writes nothing to the store but leases, so it runs
// alongside `rewind serve`. The NBD layer knows only the export interface (nbd/export.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unknownExport } from '../errors.js';
import type { ExportProvider } from '../nbd/export.js';
import { viewExport } from '../serve/view-export.js';
import { startNbdServer, type NbdServer } from '../nbd/server.js';
import type { History } from '../restore/history.js';

/** A read-only export of `volume` after write `seq` (the view's lease ends when the connection does). */
export class ViewServer {
  /** The point connections opened from now on see. */
  point: number;

  private constructor(
    private readonly server: NbdServer,
    private readonly dir: string,
    readonly socketPath: string,
    readonly volume: string,
    point: number,
  ) {
    this.point = point;
  }

  /** Serves `volume` at `point` on a new socket in a private temporary directory. */
  static async start(history: History, volume: string, point: number, log: (msg: string) => void): Promise<ViewServer> {
    history.volumes.byName(volume);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rewind-view-'));
    const socketPath = path.join(dir, 'nbd.sock');
    let self: ViewServer | null = null;
    const provider: ExportProvider = {
      list: () => [{ name: volume, description: `rewind volume ${volume}, read-only, as of the point being probed` }],
      open: (name) => {
        // The default export ("") is the volume too, for clients that send no name.
        if (name !== volume && name !== '') throw unknownExport(name, [volume]);
        return viewExport(history, volume, volume, self!.point);
      },
    };
    try {
      const server = await startNbdServer({ provider, socketPath, log });
      self = new ViewServer(server, dir, socketPath, volume, point);
      return self;
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The NBD URI of the export (libnbd's form: nbd+unix:///<export>?socket=<path>). */
  get uri(): string {
    return `nbd+unix:///${encodeURIComponent(this.volume)}?socket=${encodeURIComponent(this.socketPath).replace(/%2F/g, '/')}`;
  }

  /** Stops serving (connections still open are ended) and removes the socket's directory. */
  async close(): Promise<void> {
    try {
      await this.server.close({ graceful: false });
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
