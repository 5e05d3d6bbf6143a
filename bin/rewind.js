#!/usr/bin/env -S node --max-semi-space-size=4
// The `rewind` command: a thin launcher for the compiled CLI (run `npm run build` first). The flag caps
// V8's young generation at 4 MB a semi-space (the default grows to 16): a write-heavy `rewind serve`
// otherwise keeps about 25 MB more resident for no measurable CPU (README, memory budget).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`rewind: ${err?.stack ?? err}\n`); process.exitCode = 70; },
);
