// A worker of the kernel pool: runs WebAssembly kernels over the shared arena. It never does I/O
// and never copies a block: the scheduler put the bytes in shared memory and reads the results there.
import { workerData } from 'piscina';
import { loadKernels, type KernelVariant } from '../kernels/kernels.js';
import type { PoolTask, BuildResult } from './tasks.js';
import { BACKWARD_RAW } from './codec.js';

const { memory, variant } = workerData as { memory: WebAssembly.Memory; variant: KernelVariant };
const k = loadKernels({ memory, variant });
const mem = k.bytes();
const view = new DataView(memory.buffer);

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
      const B = task.blockSize;
      const fwdBytes = k.zeroRunEncode(task.newBlocks, n, B, data, fwdOffsets);
      // Backward increment, block by block: the XOR of old and new (sparse when a write changed part
      // of a block), or the old block itself when that is smaller (a block that was zero, say).
      const bwdStart = data + fwdBytes;
      let pos = bwdStart;
      for (let i = 0; i < n; i++) {
        const oldBlock = task.oldBlocks + i * B;
        let len = k.deltaEncode(oldBlock, task.newBlocks + i * B, 1, B, pos, task.scratch);
        let kind = 0;
        if (len > B / 4) {
          const raw = k.zeroRunEncode(oldBlock, 1, B, pos + len, task.scratch);
          if (raw < len) {
            mem.copyWithin(pos, pos + len, pos + len + raw);
            len = raw;
            kind = BACKWARD_RAW;
          }
        }
        view.setUint32(bwdOffsets + 4 * i, ((pos - bwdStart) | kind) >>> 0, true);
        pos += len;
      }
      view.setUint32(bwdOffsets + 4 * n, pos - bwdStart, true);
      const bwdBytes = pos - bwdStart;
      const bodyBytes = data + fwdBytes + bwdBytes - task.out;
      return { fwdBytes, bwdBytes, bodyCrc: k.crc32c(task.out, bodyBytes, 0) };
    }
    case 'verify':
      for (let i = task.from; i < task.from + task.count; i++) {
        const at = task.table + 12 * i;
        if (k.crc32c(view.getUint32(at, true), view.getUint32(at + 4, true), 0) !== view.getUint32(at + 8, true)) return i;
      }
      return -1;
    case 'decode':
      return k.zeroRunDecodeBlocks(task.enc, task.offsets, task.blockCount, task.dst, task.blockSize, task.xorMode, task.encLen);
  }
}
