// The writer's watch over its protection: every PROTECTION_CHECK_MS (when it runs timers) and at
// every status report, the achieved protection is compared with the required one, and a line is
// logged through onWarning when it falls under 85 % or 75 % of it, and when it recovers.
import { ProtectionAlarm } from '../lifecycle/protection.js';
import type { StatusReport } from './status.js';

export const PROTECTION_CHECK_MS = 10_000;

export class ProtectionWatch {
  private readonly alarm = new ProtectionAlarm();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly onWarning: ((message: string) => void) | undefined) {}

  /** Checks on a timer: `check` takes a status report (which notes it here). */
  start(check: () => void): void {
    this.timer = setInterval(() => {
      try {
        check();
      } catch (err) {
        this.onWarning?.(`checking protection: ${(err as Error).message}`);
      }
    }, PROTECTION_CHECK_MS);
    this.timer.unref();
  }

  /** Notes a status report taken at `now` (ms). */
  note(report: StatusReport, now: number): void {
    const ageSeconds = (now - Date.parse(report.createdAt)) / 1000;
    const line = this.alarm.check(report.protection, ageSeconds);
    if (line !== null) this.onWarning?.(line);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
