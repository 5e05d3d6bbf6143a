// The shape of src/, checked: no file grows past the size one reader can hold, and no two files
// import each other, even through others and even for types only (a cycle means two concepts that
// cannot be understood, tested or moved apart).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');
const FILE_LINES_MAX = 400;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Every module specifier a file names: static imports and re-exports (type-only included) and dynamic imports. */
export function importsOf(text: string): string[] {
  const specs: string[] = [];
  const patterns = [/\b(?:import|export)\s[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of text.matchAll(re)) specs.push(m[1]);
  return specs;
}

/** The src/ files a file imports (relative specifiers only; packages and node: built-ins are not ours). */
function localImports(file: string, text: string): string[] {
  return importsOf(text)
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('the shape of src/', () => {
  const files = sourceFiles(SRC);

  it('has source files to check', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it(`has no file over ${FILE_LINES_MAX} lines`, () => {
    const long = files
      .map((f) => ({ file: relative(ROOT, f), lines: readFileSync(f, 'utf8').split('\n').length }))
      .filter((f) => f.lines > FILE_LINES_MAX);
    expect(long).toEqual([]);
  });

  it('has no import cycle between its files, type-only imports included', () => {
    const graph = new Map(files.map((f) => [f, localImports(f, readFileSync(f, 'utf8'))]));
    for (const [file, deps] of graph) {
      for (const d of deps) expect(graph.has(d), `${relative(ROOT, file)} imports ${relative(ROOT, d)}, which does not exist`).toBe(true);
    }
    const found = cycles(graph).map((c) => c.map((f) => relative(ROOT, f)));
    expect(found).toEqual([]);
  });

  it('the cycle finder finds a cycle through three files and a file importing itself', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c'], ['e']]);
  });

  it('the import scanner sees type-only, re-export, multi-line and dynamic imports', () => {
    const text = [
      "import type { A } from './a.js';",
      "export { B } from './b.js';",
      'import {',
      '  C,',
      "} from './c.js';",
      "const d = await import('./d.js');",
      "import './e.js';",
      "export * from './f.js';",
    ].join('\n');
    expect(importsOf(text).sort()).toEqual(['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js']);
  });
});
