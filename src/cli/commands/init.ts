import type { Io } from '../io.js';
import { initStore } from '../../store/init.js';
import { parseSize, formatBytes } from '../../units.js';
import { parseVolumeSpec } from '../args.js';
import { progressBar } from '../progress.js';
import { EXIT } from '../exit-codes.js';

export async function initCommand(io: Io, store: string, opts: { volume: string[]; blockSize: string; window: string; retain?: string; capacity?: string; json?: boolean }): Promise<number> {
  const volumes = opts.volume.map(parseVolumeSpec);
  const bar = progressBar('baseline');
  try {
    const config = await initStore(store, {
      volumes,
      blockSize: parseSize(opts.blockSize, '--block-size'),
      window: opts.window,
      retain: opts.retain,
      capacity: opts.capacity,
      onProgress: (_v, done, total) => bar.update(done, total),
    });
    bar.stop();
    if (opts.json) io.out(JSON.stringify(config) + '\n');
    else io.out(`created store ${store}: ${config.volumes.map((v) => `${v.name} (${formatBytes(v.size)})`).join(', ')}; block size ${config.blockSize}; window ${config.window}${config.retain ? `; retain ${config.retain}` : ''}${config.capacity ? `; capacity ${config.capacity}` : ''}\n`);
    return EXIT.OK;
  } finally {
    bar.stop();
  }
}
