import type { Io } from '../io.js';
import { openStoreReader } from '../../store/reader.js';
import { describeTarget } from '../../restore/target.js';
import { formatBytes } from '../../units.js';
import { parseTarget } from '../args.js';
import { progressBar } from '../progress.js';
import { EXIT } from '../exit-codes.js';

export async function restoreCommand(io: Io, store: string, opts: { volume: string; seq?: string; time?: string; tx?: string; out: string; json?: boolean }): Promise<number> {
  const target = parseTarget(opts);
  const reader = await openStoreReader(store);
  const bar = progressBar(`restore ${opts.volume}`);
  try {
    reader.history.volumes.byName(opts.volume);
    const started = performance.now();
    const r = await reader.history.restore(opts.volume, target, opts.out, (done, total) => bar.update(done, total));
    bar.stop();
    const seconds = (performance.now() - started) / 1000;
    if (opts.json) io.out(JSON.stringify({ volume: opts.volume, seq: r.seq, bytes: r.bytes, out: opts.out, seconds }) + '\n');
    else io.out(`restored volume ${opts.volume} at ${describeTarget(target)} (state after seq ${r.seq}) to ${opts.out}: ${formatBytes(r.bytes)} in ${seconds.toFixed(2)} s\n`);
    return EXIT.OK;
  } finally {
    bar.stop();
    reader.close();
  }
}
