// Time as rewind sees it: injected, so tests drive windows and timestamps without sleeping.
import { badArgument } from './errors.js';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  constructor(private ms = Date.UTC(2026, 0, 1)) {}
  now(): number { return this.ms; }
  advance(ms: number): void {
    if (!(ms >= 0)) throw badArgument(`ManualClock cannot go back: advance(${ms}) needs a number of milliseconds >= 0`);
    this.ms += ms;
  }
  set(ms: number): void { this.ms = ms; }
}
