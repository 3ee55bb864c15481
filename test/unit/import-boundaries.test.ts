import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { findImportCycles } from '../../scripts/import-cycles';

/**
 * The import rules of the layout, as `npm run lint` enforces them: planted imports that break a rule must fail lint
 * with the rule's message, and the tree must have no import cycle.
 */
const root = path.resolve(__dirname, '..', '..');

/**
 * Lints `code` as if it were the file at `filePath`, through ESLint's Node API with the project's eslint.config.mjs.
 * In a child process: jest's module system cannot load an ES-module config file.
 */
function restrictedImports(filePath: string, code: string): string[] {
  const script = `
    const { ESLint } = require('eslint');
    const code = require('node:fs').readFileSync(0, 'utf8');
    new ESLint({ cwd: process.cwd() })
      .lintText(code, { filePath: process.argv[1] })
      .then(([result]) => process.stdout.write(JSON.stringify(result.messages)));
  `;
  const output = execFileSync(process.execPath, ['-e', script, path.join(root, filePath)], {
    cwd: root,
    input: code,
    encoding: 'utf8',
  });
  return (JSON.parse(output) as { ruleId: string | null; message: string }[])
    .filter((message) => message.ruleId === 'no-restricted-imports')
    .map((message) => message.message);
}

describe('import boundaries', () => {
  it('workflows/ may not import lib/ (or anything but the workflow API, contracts and sibling workflows)', () => {
    const planted = [
      "import { registryNames } from '../lib/rag/registries';",
      "import { errorTypes } from './contracts/../../lib/common/errors';",
      "import fs from 'node:fs';",
      "import { proxyActivities } from '@temporalio/workflow';",
      "import { taskQueues } from './contracts/task-queues';",
      "import { evaluateWorkflow } from './evaluate';",
      'export const used = [registryNames, errorTypes, fs, proxyActivities, taskQueues, evaluateWorkflow];',
    ].join('\n');
    const messages = restrictedImports('workflows/lifecycle-pipeline.ts', planted);
    expect(messages).toHaveLength(3);
    expect(new Set(messages)).toEqual(
      new Set([
        "'../lib/rag/registries' import is restricted from being used by a pattern. workflows/ may import only @temporalio/workflow, workflows/contracts and sibling workflows.",
        "'./contracts/../../lib/common/errors' import is restricted from being used by a pattern. workflows/ may import only @temporalio/workflow, workflows/contracts and sibling workflows.",
        "'node:fs' import is restricted from being used by a pattern. workflows/ may import only @temporalio/workflow, workflows/contracts and sibling workflows.",
      ]),
    );
  });

  it('lib/ may not import activities, client or workers, nor workflow code', () => {
    const planted = [
      "import { atBoundary } from '../../activities/boundary';",
      "import { runCli } from '../../client/cli';",
      "import { main } from '../../workers/run-worker';",
      "import { lifecyclePipelineWorkflow } from '../../workflows/lifecycle-pipeline';",
      "import { errorTypes } from '../../workflows/contracts/errors';",
      'export const used = [atBoundary, runCli, main, lifecyclePipelineWorkflow, errorTypes];',
    ].join('\n');
    const messages = restrictedImports('lib/rag/registries.ts', planted);
    expect(messages).toEqual([
      expect.stringContaining("'../../activities/boundary' import is restricted"),
      expect.stringContaining("'../../client/cli' import is restricted"),
      expect.stringContaining("'../../workers/run-worker' import is restricted"),
      expect.stringContaining('lib/ may import only workflows/contracts, never workflow code.'),
    ]);
  });

  it('the tree has no import cycle, and a planted one is found', () => {
    expect(findImportCycles(root)).toEqual([]);
    const planted = path.join(root, 'lib', 'rag', 'planted-cycle.ts');
    const target = path.join(root, 'lib', 'rag', 'registries.ts');
    const original = fs.readFileSync(target, 'utf8');
    try {
      fs.writeFileSync(planted, "import { registryNames } from './registries';\nexport const names = registryNames;\n");
      fs.writeFileSync(target, `${original}import './planted-cycle';\n`);
      expect(findImportCycles(root)).toEqual([
        ['lib/rag/planted-cycle.ts', 'lib/rag/registries.ts', 'lib/rag/planted-cycle.ts'],
      ]);
    } finally {
      fs.writeFileSync(target, original);
      fs.rmSync(planted, { force: true });
    }
  });
});
