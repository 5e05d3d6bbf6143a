// Where a worker thread's compiled module is. Tests run the TypeScript sources, but a worker must
// load JavaScript, so from a .ts module the compiled twin under dist/ is used.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert } from './errors.js';

/**
 * The path of `name` (a .js file beside the calling module once compiled), for the module at
 * `moduleUrl` (its import.meta.url) in `srcDir` (its folder under src/, e.g. 'increment'). A file
 * not built is a broken installation: an INVARIANT error naming `what`.
 */
export function compiledWorkerFile(moduleUrl: string, srcDir: string, name: string, what: string): string {
  const here = fileURLToPath(moduleUrl);
  const file = here.endsWith('.ts') ? resolve(dirname(here), '../../dist/src', srcDir, name) : join(dirname(here), name);
  assert(existsSync(file), `${what} ${file} is built (run \`npm run build\`)`);
  return file;
}

/**
 * The node flags a worker thread starts with: the process's own, less those a worker refuses:
 * `--input-type` (which `node -e` passes on) and the V8 heap-size flags (`rewind` runs node with
 * `--max-semi-space-size`, bin/rewind.js; a worker started with it fails to start). And, where node
 * has it, `--no-experimental-require-module`: Piscina loads its worker file with `require` first, and
 * Node 20's synchronous require of an ES module now and then ends the whole process with a V8 fatal
 * error ("v8::Module::IsGraphAsync must be used on an instantiated module"; twice in three full test
 * runs). With the flag the require fails at once and Piscina imports the module instead.
 */
export function workerExecArgv(): string[] {
  const kept = process.execArgv.filter((a) => !a.startsWith('--input-type') && !/^--max-(semi|old)-space-size/.test(a));
  return process.allowedNodeEnvironmentFlags.has('--no-experimental-require-module') ? [...kept, '--no-experimental-require-module'] : kept;
}
