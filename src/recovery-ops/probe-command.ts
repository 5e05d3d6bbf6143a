// Running the user's command against one point (`rewind bisect -- CMD ...`): `{}` in any argument
// becomes the view's NBD URI, which is also in $REWIND_URI (and the point in $REWIND_SEQ). The command
// runs without a shell (give `sh -c '...'` for one); its output goes to `output` so that bisect's own
// stdout stays one result. Its exit status is the verdict: 0 good, anything else (or a signal) bad.
import { spawn } from 'node:child_process';
import { badArgument } from '../errors.js';

export interface ProbeOutcome {
  good: boolean;
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The command line with `{}` replaced by the URI in every argument. */
export function probeArgv(cmd: readonly string[], uri: string): string[] {
  return cmd.map((a) => a.split('{}').join(uri));
}

export function runProbe(cmd: readonly string[], uri: string, seq: number, output: (chunk: string) => void): Promise<ProbeOutcome> {
  const [file, ...args] = probeArgv(cmd, uri);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REWIND_URI: uri, REWIND_SEQ: String(seq) },
    });
    child.stdout.on('data', (d: Buffer) => output(d.toString()));
    child.stderr.on('data', (d: Buffer) => output(d.toString()));
    child.on('error', (err) => reject(badArgument(`cannot run "${cmd[0]}": ${err.message}`)));
    child.on('close', (code, signal) => resolve({ good: code === 0, code, signal }));
  });
}

/** How a probe ended, for people: "exit 0", "exit 3", "killed by SIGSEGV". */
export function describeOutcome(o: ProbeOutcome): string {
  return o.signal ? `killed by ${o.signal}` : `exit ${o.code}`;
}
