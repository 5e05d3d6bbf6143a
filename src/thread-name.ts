// Names the calling thread for tools that read /proc/PID/task/TID/comm (top -H, perf, the bench's
// per-thread CPU table). Node names none of its threads, so every one reads "node" otherwise. A
// synchronous fs call runs on the calling thread, so /proc/thread-self is this thread. Best effort:
// off Linux, or without /proc, nothing happens.
import { writeFileSync } from 'node:fs';

/** Linux keeps at most 15 bytes of a thread's name. */
const THREAD_NAME_BYTES_MAX = 15;

export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, THREAD_NAME_BYTES_MAX));
  } catch {
    // Not Linux, or /proc not mounted: the name is only for observers.
  }
}
