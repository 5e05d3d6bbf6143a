// A worker of the kernel pool: runs WebAssembly kernels over the shared arena. It never does I/O
// and never copies a block: the scheduler put the bytes in shared memory and reads the results there.
import { workerData } from 'piscina';
import { loadKernels, type KernelVariant } from '../kernels/kernels.js';
import type { PoolTask, BuildResult } from './tasks.js';

const { memory, variant } = workerData as { memory: WebAssembly.Memory; variant: KernelVariant };
const k = loadKernels({ memory, variant });

export default function run(task: PoolTask): BuildResult | number {
  switch (task.kind) {
    case 'coalesce':
      k.coalesce(task.table, task.count);
      return 0;
    case 'build': {
      const n = task.blockCount;
      if (task.count > 0) k.coalesce(task.table, task.count);
      const fwdOffsets = task.out + 8 * n;
      const bwdOffsets = fwdOffsets + 4 * (n + 1);
      const data = bwdOffsets + 4 * (n + 1);
      const fwdBytes = k.zeroRunEncode(task.newBlocks, n, task.blockSize, data, fwdOffsets);
      const bwdBytes = k.deltaEncode(task.oldBlocks, task.newBlocks, n, task.blockSize, data + fwdBytes, bwdOffsets);
      const bodyBytes = data + fwdBytes + bwdBytes - task.out;
      return { fwdBytes, bwdBytes, bodyCrc: k.crc32c(task.out, bodyBytes, 0) };
    }
    case 'decode':
      return k.zeroRunDecodeBlocks(task.enc, task.offsets, task.blockCount, task.dst, task.blockSize, task.xorMode, task.encLen);
  }
}
