// The production writer's thread (see production-writer.ts): takes queued writes from the shared
// ring in order and writes each to its file. On a failure it records the errno and waits until the
// event loop has taken the failed writes back.
import { writeSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { CTRL, ENTRY_FIELDS } from './production-writer.js';
import { nameThisThread } from '../thread-name.js';

nameThisThread('rw-production');

const ctrl = new Int32Array(workerData.ctrl as SharedArrayBuffer);
const entries = new Float64Array(workerData.entries as SharedArrayBuffer);
const data = new Uint8Array(workerData.data as SharedArrayBuffer);
const slots = entries.length / ENTRY_FIELDS;
/** While writes keep coming, the ring is looked at every POLL_MS; after IDLE_POLLS empty looks the thread sleeps until woken. */
const POLL_MS = 1;
const IDLE_POLLS = 20;
/** Longest sleep: a stop asked for just as the thread went to sleep is seen within this. */
const SLEEP_MS = 250;
let idle = 0;

function run(): void {
  for (;;) {
    if (Atomics.load(ctrl, CTRL.failed) === 1) {
      if (Atomics.load(ctrl, CTRL.stop) === 1) break;
      Atomics.wait(ctrl, CTRL.failed, 1, SLEEP_MS);
      continue;
    }
    const tail = Atomics.load(ctrl, CTRL.tail);
    let head = Atomics.load(ctrl, CTRL.head);
    if (head === tail) {
      if (Atomics.load(ctrl, CTRL.stop) === 1) break;
      if (idle < IDLE_POLLS) {
        // Busy lately: look again in a millisecond without asking to be woken.
        idle++;
        Atomics.wait(ctrl, CTRL.tail, tail, POLL_MS);
        continue;
      }
      // Idle: sleep until a write comes (the writer wakes us when it sees this flag).
      Atomics.store(ctrl, CTRL.sleeping, 1);
      if (Atomics.load(ctrl, CTRL.tail) === tail && Atomics.load(ctrl, CTRL.stop) === 0) Atomics.wait(ctrl, CTRL.tail, tail, SLEEP_MS);
      Atomics.store(ctrl, CTRL.sleeping, 0);
      continue;
    }
    idle = 0;
    // Counters wrap (int32, see CTRL): compared only for equality.
    while (head !== tail) {
      const e = (head & (slots - 1)) * ENTRY_FIELDS;
      const fd = entries[e];
      const offset = entries[e + 1];
      const at = entries[e + 2];
      const len = entries[e + 3];
      try {
        let done = 0;
        while (done < len) done += writeSync(fd, data, at + done, len - done, offset + done);
      } catch (err) {
        Atomics.store(ctrl, CTRL.errno, (err as NodeJS.ErrnoException).errno ?? -5);
        Atomics.store(ctrl, CTRL.failed, 1);
        Atomics.notify(ctrl, CTRL.head);
        break;
      }
      head = (head + 1) | 0;
      Atomics.store(ctrl, CTRL.head, head);
      Atomics.notify(ctrl, CTRL.head);
    }
  }
}

try {
  run();
} catch (err) {
  // Unexpected: say so before ending, so the event loop stops waiting and redoes what was queued.
  Atomics.store(ctrl, CTRL.dead, 1);
  Atomics.notify(ctrl, CTRL.head);
  throw err;
}
