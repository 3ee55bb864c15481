import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config/config';
import { openLineageStore } from '../../lib/lineage';
import { lineageStoreOptions } from '../../lib/services';
import { logBaseModelFolder } from '../../lib/rag';
import { importBaseModel } from '../../lib/training/model-import';
import { printJson } from '../output';

/** An artifact name from a file or folder name: letters, digits, `-`, `_` and `.`. */
function artifactNameFor(source: string): string {
  const base = path.basename(path.resolve(source)).replace(/\.gguf$/i, '');
  return base.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '') || 'imported-model';
}

export function registerModelsCommands(program: Command): void {
  const models = program.command('models').description('Base chat models: bring your own Llama-family checkpoint');
  models
    .command('import <source>')
    .description(
      'Check a Llama-family checkpoint (a Hugging Face folder or a .gguf file), convert and export it to ONNX, and ' +
        'log it as a model artifact to pass to `weft run pipeline --base-model`. Checks: a supported architecture, ' +
        "a chat template, the saved weights reproduce the source's logits and greedy answer, the ONNX export " +
        "reproduces transformers' logits.",
    )
    .option('--name <name>', 'artifact name (default: the file or folder name)')
    .option('--json', 'print one JSON object instead of text')
    .action(async (source: string, options: { name?: string; json?: boolean }) => {
      const config = loadConfig();
      const name = options.name ?? artifactNameFor(source);
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
        throw new Error(`--name must start with a letter or digit and use only letters, digits, '-', '_' and '.'.`);
      }
      const imported = await importBaseModel({
        python: config.python,
        source,
        outputDirectory: path.join(config.modelsDir, 'imported', name),
        onProgress: (message) => process.stderr.write(`  ${message}\n`),
      });
      const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
      try {
        const logged = await logBaseModelFolder({ store }, imported.onnxDirectory, {
          name,
          description: `Base chat model imported from ${path.resolve(source)} by weft models import.`,
          builtBy: 'weft models import',
        });
        const checks = (imported.provenance.checks ?? {}) as Record<string, unknown>;
        if (options.json) {
          return printJson({
            ref: logged.ref,
            created: logged.created,
            folder: path.dirname(imported.hfDirectory),
            provenance: imported.provenance,
          });
        }
        process.stdout.write(
          `${logged.ref}${logged.created ? '' : ' (already logged)'}\n` +
            `  ${String(imported.provenance.architecture)}, ${Number(imported.provenance.parameters).toLocaleString()} parameters; ` +
            `greedy answer to "${String(checks.greedy_prompt)}": ${JSON.stringify(checks.greedy_answer)}\n` +
            `  use it: weft run pipeline --base-model '${logged.ref}' …\n`,
        );
      } finally {
        await store.close();
      }
    });
}
