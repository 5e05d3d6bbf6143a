// `npm run bench`: every benchmark, side by side in one run; prints tables and writes the figures
// as JSON (bench-results.json, or the path given with --json-out).
import { writeFileSync } from 'node:fs';
import { benchKernels } from './kernels.js';
import { benchCapture } from './capture.js';

const quick = process.argv.includes('--quick');
const outIndex = process.argv.indexOf('--json-out');
const outPath = outIndex > 0 ? process.argv[outIndex + 1] : 'bench-results.json';

const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

console.log('\nKernels (1 MiB inputs): WebAssembly SIMD vs TypeScript reference vs Buffer.copy of the same bytes');
const kernels = await benchKernels({ quick });
console.table(kernels.map((k) => ({ kernel: k.kernel, 'wasm GB/s': f(k.wasmGBps), 'ts GB/s': f(k.tsGBps), 'copy GB/s': f(k.copyGBps), 'wasm/ts': f(k.wasmVsTs, 1), 'wasm/copy': f(k.wasmVsCopy) })));

console.log('\nEmbedded capture: Store.write (journal + production, windows applied in the background) vs plain file writes');
const capture = await benchCapture({ quick });
console.table(capture.map((r) => ({ write: `${r.writeBytes / 1024} KiB`, 'rewind MB/s': f(r.rewindMBps, 0), 'rewind writes/s': f(r.rewindWritesPerSec, 0), 'plain MB/s': f(r.plainMBps, 0), 'rewind/plain': f(r.ratio), 'applied MB/s': f(r.appliedMBps, 0) })));

writeFileSync(outPath, JSON.stringify({ date: new Date().toISOString(), node: process.version, kernels, capture }, null, 2) + '\n');
console.log(`\nfigures written to ${outPath}`);
