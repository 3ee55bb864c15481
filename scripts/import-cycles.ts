import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Import cycles among the project's TypeScript modules (relative imports and re-exports, type-only ones included:
 * a cycle of types is still two modules that cannot be understood apart). `npm run lint` runs this; a cycle is
 * printed as the chain of files that closes it.
 */

const sourceFolders = ['workflows', 'activities', 'workers', 'client', 'lib', 'bench', 'scripts'];

function typescriptFiles(folder: string): string[] {
  if (!fs.existsSync(folder)) return [];
  return (fs.readdirSync(folder, { recursive: true }) as string[])
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(folder, file));
}

/** The project's modules and, for each, the project modules it imports. */
export function importGraph(root: string): Map<string, string[]> {
  const files = sourceFolders.flatMap((folder) => typescriptFiles(path.join(root, folder)));
  const options: ts.CompilerOptions = { moduleResolution: ts.ModuleResolutionKind.Node10, resolveJsonModule: true };
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const targets: string[] = [];
    for (const imported of importedFiles) {
      if (!imported.fileName.startsWith('.')) continue;
      const resolved = ts.resolveModuleName(imported.fileName, file, options, ts.sys).resolvedModule;
      if (resolved && resolved.extension === ts.Extension.Ts) targets.push(path.resolve(resolved.resolvedFileName));
    }
    graph.set(path.resolve(file), targets);
  }
  return graph;
}

/** Every elementary cycle found by a depth-first walk, each once, as paths relative to root. */
export function findImportCycles(root: string): string[][] {
  const graph = importGraph(root);
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === 'open') {
        const found = stack.slice(stack.indexOf(target)).map((entry) => path.relative(root, entry));
        // Start each cycle at its first file by name, so the same cycle always reads the same.
        const start = found.indexOf([...found].sort()[0]!);
        const cycle = [...found.slice(start), ...found.slice(0, start)];
        const key = cycle.join('|');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...cycle, cycle[0]!]);
        }
      } else if (!state.has(target)) visit(target);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}

if (require.main === module) {
  const cycles = findImportCycles(path.resolve(__dirname, '..'));
  for (const cycle of cycles) process.stderr.write(`import cycle: ${cycle.join(' → ')}\n`);
  if (cycles.length > 0) process.exit(1);
}
