#!/usr/bin/env node
// The `rewind` command: a thin launcher for the compiled CLI (run `npm run build` first).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`rewind: ${err?.stack ?? err}\n`); process.exitCode = 70; },
);
