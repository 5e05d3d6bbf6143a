// What a verify pass found: damage (with the file and byte position), notes (states that are not
// damage, such as history retired by the retention policy) and counts of what was read.
import { RewindError } from '../errors.js';

export interface Problem {
  file: string;
  position: number;
  message: string;
}

export interface VerifyChecked {
  journalRecords: number;
  journalBytes: number;
  packs: number;
  transactions: number;
  replicaBlocks: number;
}

export interface VerifyReport {
  ok: boolean;
  checked: VerifyChecked;
  problems: Problem[];
  notes: string[];
}

/** Collects findings as the checks run. */
export class Findings {
  readonly problems: Problem[] = [];
  readonly notes: string[] = [];
  readonly checked: VerifyChecked = { journalRecords: 0, journalBytes: 0, packs: 0, transactions: 0, replicaBlocks: 0 };

  damage(file: string, position: number, message: string): void {
    this.problems.push({ file, position, message });
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** Damage from a thrown error: a CORRUPT error names its own file and position; others count against `file`. */
  fail(err: unknown, file: string): void {
    const m = err instanceof RewindError && err.code === 'CORRUPT' ? /^(.*) at byte (\d+): (.*)$/s.exec(err.message) : null;
    if (m) this.damage(m[1], Number(m[2]), m[3]);
    else this.damage(file, 0, (err as Error).message);
  }

  report(): VerifyReport {
    return { ok: this.problems.length === 0, checked: this.checked, problems: this.problems, notes: this.notes };
  }
}
