// One step that makes a fresh clone runnable: install dependencies when missing or stale,
// then build the WebAssembly kernels and the TypeScript. Used by `npm test` and `npm start`.
import { execSync } from 'node:child_process';
import { existsSync, lstatSync, statSync } from 'node:fs';

const run = (cmd) => execSync(cmd, { stdio: 'inherit' });
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

const stamp = 'node_modules/.package-lock.json';
// A node_modules that is a link is someone else's install (a second work tree sharing one): leave it.
const linked = existsSync('node_modules') && lstatSync('node_modules').isSymbolicLink();
if (!linked && (!existsSync(stamp) || mtime('package.json') > mtime(stamp) || mtime('package-lock.json') > mtime(stamp))) {
  run(existsSync('package-lock.json') ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund');
}
run('npm run --silent build');
