import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ragModelProblems, refuseInvalidInputs } from '../../activities/validation';
import { readJsonObjectLines } from '../../lib/common/data-files';
import { loadConfig, projectRoot } from '../../lib/config/config';
import { openWorkerServices, type WorkerServices } from '../../lib/services';
import { bootstrapDemoProject, demoNames, selectRagModel, type DemoProject } from '../../lib/rag';
import { scorersByName } from '../../lib/scoring/scorers';
import {
  evaluationProgressQuery,
  type EvaluateWorkflowResult,
  type EvaluationSummary,
} from '../../workflows/contracts/evaluation';
import { taskQueues } from '../../workflows/contracts/task-queues';
import type { evaluateWorkflow } from '../../workflows';
import { formatTable, printJson, progressBar } from '../output';
import { resultOrRunFailure } from '../run-failure';
import { connectClient } from '../temporal-client';
import { formatScores, lifecycleJson, printLifecycleResult, startLifecycle } from './pipeline-commands';
import { withStack } from './stack-commands';
import { uiLinks } from '../../lib/weave-server/ui/ui-links';

/** The demo app's name: its registry collection, search attribute value and business key. */
export const demoApp = demoNames.app;

async function withServices<T>(body: (services: WorkerServices) => Promise<T>): Promise<T> {
  const services = await openWorkerServices(loadConfig());
  try {
    return await body(services);
  } finally {
    await services.close();
  }
}

/** Sets up (or finds) the demo project: models, corpus, datasets, RagModel v0, Evaluation. */
export async function bootstrapDemo(quiet: boolean): Promise<DemoProject> {
  const config = loadConfig();
  return withServices((services) =>
    bootstrapDemoProject(services.rag, {
      dataDirectory: path.join(projectRoot, 'data', 'climate'),
      modelsDirectory: config.modelsDir,
      baseModel: config.demoBaseModel,
      onProgress: quiet ? undefined : (message) => process.stderr.write(`  ${message}\n`),
    }),
  );
}

interface EvaluationRowInput {
  id?: string;
  question?: unknown;
  answer?: unknown;
  doc_id?: unknown;
}

/** Reads a user's QA file (JSON lines, same row format as data/): every row needs question, answer and doc_id. */
function readQaFile(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist.`);
  const rows = readJsonObjectLines(file, '{"question", "answer", "doc_id"}').map(({ line, value }) => {
    const row = value as EvaluationRowInput;
    const missing = (['question', 'answer', 'doc_id'] as const).filter(
      (field) => typeof row[field] !== 'string' || (row[field] as string).trim() === '',
    );
    if (missing.length > 0) {
      throw new Error(`${file}:${line} is missing ${missing.join(', ')}: each row needs question, answer and doc_id.`);
    }
    return { id: String(row.id ?? `row-${line}`), question: row.question, answer: row.answer, doc_id: row.doc_id };
  });
  if (rows.length === 0) throw new Error(`${file} has no rows.`);
  return rows;
}

function summaryMeans(summary: EvaluationSummary | undefined) {
  return summary ? Object.fromEntries(Object.entries(summary).map(([name, value]) => [name, value.mean])) : null;
}

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description(
      'Run the whole lifecycle on the demo project: starts the embedded stack if needed, bootstraps the demo ' +
        '(base model, corpus ingest, datasets, RagModel v0, Evaluation), fine-tunes, evaluates before/after, gates and publishes',
    )
    .option('--config <name>', 'training config: demo-cpu or gpu', 'demo-cpu')
    .option('--id <workflowId>', 'workflow id (default: the business key; a completed run is shown again, not re-run)')
    .option('--json', 'end with one JSON object: workflow id, scores before/after, gate decision and refs')
    .action(async (options: { config: string; id?: string; json?: boolean }) => {
      if (options.config !== 'demo-cpu' && options.config !== 'gpu') {
        throw new Error(`--config must be demo-cpu or gpu, got '${options.config}'.`);
      }
      if (!options.json) process.stderr.write('Bootstrapping the demo project…\n');
      const demo = await bootstrapDemo(Boolean(options.json));
      const outcome = await startLifecycle(
        {
          app: demoApp,
          baseModelRef: demo.baseModelArtifactRef,
          trainingDatasetRef: demo.trainingDatasetRef,
          evaluationRef: demo.evaluationRef,
          ragModelRef: demo.ragModelRef,
          trainingConfig: options.config,
        },
        { workflowId: options.id, wait: true, json: Boolean(options.json) },
      );
      if (options.json) printJson({ ...lifecycleJson(outcome.workflowId, outcome.result!), run: outcome.run, demo });
      else printLifecycleResult(outcome.workflowId, outcome.result!, outcome.ui);
    });

  program
    .command('evaluate')
    .description(
      'Evaluate a RagModel on a QA dataset (a JSON-lines file like data/climate/qa-eval.jsonl, or a Dataset ref)',
    )
    .requiredOption(
      '--dataset <file-or-ref>',
      'QA file (rows: question, answer, doc_id) or weave:///…/object/<Dataset>:<digest>',
    )
    .option(
      '--rag <ref-or-alias>',
      'RagModel: a full ref, an alias such as production, or RagModel:vN (default: production, else the newest)',
    )
    .option('--fresh', 'bypass the prediction cache')
    .option('--batch-size <rows>', 'rows per predict activity', '8')
    .option('--parallel <batches>', 'predict activities in flight', '2')
    .option('--json', 'end with one JSON object: workflow id, scores and refs')
    .action(
      async (options: {
        dataset: string;
        rag?: string;
        fresh?: boolean;
        batchSize: string;
        parallel: string;
        json?: boolean;
      }) => {
        const config = loadConfig();
        const batchSize = Number(options.batchSize);
        const parallel = Number(options.parallel);
        if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`--batch-size must be a whole number ≥ 1.`);
        if (!Number.isInteger(parallel) || parallel < 1) throw new Error(`--parallel must be a whole number ≥ 1.`);
        // Validate and publish locally first: bad input is refused before anything starts.
        const prepared = await withServices(async (services) => {
          // Everything is read and checked before the first write: a refused --rag publishes no Dataset or Evaluation.
          const datasetInput: { ref: string } | { rows: Record<string, unknown>[]; name: string } =
            options.dataset.startsWith('weave:///')
              ? { ref: (await services.store.objects.get(options.dataset)).ref }
              : {
                  rows: readQaFile(options.dataset),
                  name: path
                    .basename(options.dataset)
                    .replace(/\.jsonl?$/, '')
                    .replace(/[^A-Za-z0-9_.-]+/g, '-'),
                };
          let selected = await selectRagModel(services.store, options.rag, config);
          if (selected === null) {
            if (!options.json) process.stderr.write('No RagModel yet: bootstrapping the demo project…\n');
            const demo = await bootstrapDemoProject(services.rag, {
              dataDirectory: path.join(projectRoot, 'data', 'climate'),
              modelsDirectory: config.modelsDir,
              baseModel: config.demoBaseModel,
            });
            selected = { ragModelRef: demo.ragModelRef, source: 'latest' };
          }
          refuseInvalidInputs(await ragModelProblems(services.store, selected.ragModelRef));
          const ragModelRef = (await services.store.objects.get(selected.ragModelRef)).ref;
          const datasetRef =
            'ref' in datasetInput
              ? datasetInput.ref
              : (await services.store.datasets.publish({ name: datasetInput.name, rows: datasetInput.rows })).ref;
          const evaluation = await services.rag.publishEvaluation({
            dataset: datasetRef,
            scorers: Object.keys(scorersByName),
          });
          return { datasetRef, evaluationRef: evaluation.ref, ragModelRef };
        });
        const outcome = await withStack({ quiet: options.json }, async (stack) => {
          const { client, close } = await connectClient(stack.address);
          try {
            const workflowId = `evaluate/${prepared.ragModelRef.slice(-12)}/${Date.now().toString(36)}`;
            const handle = await client.workflow.start<typeof evaluateWorkflow>('evaluateWorkflow', {
              taskQueue: taskQueues.pipeline,
              workflowId,
              args: [
                {
                  evaluationRef: prepared.evaluationRef,
                  ragModelRefs: [prepared.ragModelRef],
                  fresh: options.fresh,
                  batchSize,
                  maxParallelBatches: parallel,
                },
              ],
            });
            const ticker = options.json
              ? undefined
              : setInterval(() => {
                  void handle
                    .query(evaluationProgressQuery)
                    .then((progress) =>
                      process.stderr.write(
                        `\r${progressBar(progress.totalBatches ? progress.completedBatches / progress.totalBatches : 0)} ` +
                          `${progress.stage} — ${progress.predictedRows} predicted, ${progress.cachedRows} cached`,
                      ),
                    )
                    .catch(() => undefined);
                }, 1000);
            try {
              const result: EvaluateWorkflowResult = await resultOrRunFailure(workflowId, handle.result());
              if (ticker) process.stderr.write('\n');
              return { workflowId, result };
            } finally {
              if (ticker) clearInterval(ticker);
            }
          } finally {
            await close();
          }
        });
        const [modelResult] = outcome.result.results;
        if (options.json) {
          printJson({
            workflowId: outcome.workflowId,
            scores: summaryMeans(modelResult?.summary),
            predictedRows: outcome.result.predictedRows,
            cachedRows: outcome.result.cachedRows,
            refs: { ...prepared, evaluationResultRef: modelResult?.evaluationResultRef },
          });
        } else {
          process.stdout.write(
            `${formatScores([{ label: 'mean [95% CI]', summary: modelResult.summary }])}\n\n` +
              `${outcome.result.rowCount} rows: ${outcome.result.predictedRows} predicted, ${outcome.result.cachedRows} from cache\n` +
              `RagModel: ${prepared.ragModelRef}\nEvaluationResult: ${modelResult.evaluationResultRef}\nWorkflow: ${outcome.workflowId}\n`,
          );
          const links = uiLinks(loadConfig().serveUrl);
          if (links) process.stdout.write(`Web UI: ${links.lineage(modelResult.evaluationResultRef)}\n`);
        }
      },
    );

  const evals = program.command('evals').description('Inspect evaluation results');
  evals
    .command('compare')
    .description('Side-by-side table of two EvaluationResults: per-scorer deltas and the rows that changed most')
    .argument('<a>', 'EvaluationResult ref (weave:///…/object/EvaluationResult:<digest>)')
    .argument('<b>', 'EvaluationResult ref')
    .option('--metric <name>', 'score used to rank changed rows', 'f1')
    .option('--rows <count>', 'how many changed rows to show', '10')
    .option('--json', 'print as JSON')
    .action(async (a: string, b: string, options: { metric: string; rows: string; json?: boolean }) => {
      interface Stored {
        model: string;
        summary: EvaluationSummary;
        rows: { rowIndex: number; id: string; scores: Record<string, number> }[];
      }
      const [left, right] = await withServices(async (services) =>
        Promise.all(
          [a, b].map(async (ref) => {
            const object = await services.store.objects.get(ref);
            const value = object.value as Partial<Stored>;
            if (!value.summary || !Array.isArray(value.rows)) {
              throw new Error(`${ref} is not an EvaluationResult (it has no summary and rows).`);
            }
            return value as Stored;
          }),
        ),
      );
      const names = [...new Set([...Object.keys(left.summary), ...Object.keys(right.summary)])];
      const scorers = names.map((name) => {
        const before = left.summary[name as keyof EvaluationSummary]?.mean ?? Number.NaN;
        const after = right.summary[name as keyof EvaluationSummary]?.mean ?? Number.NaN;
        return { name, a: before, b: after, delta: after - before };
      });
      const rightByRow = new Map(right.rows.map((row) => [row.rowIndex, row]));
      const changed = left.rows
        .filter((row) => rightByRow.has(row.rowIndex))
        .map((row) => {
          const other = rightByRow.get(row.rowIndex)!;
          const before = row.scores[options.metric] ?? Number.NaN;
          const after = other.scores[options.metric] ?? Number.NaN;
          return { rowIndex: row.rowIndex, id: row.id, a: before, b: after, delta: after - before };
        })
        .filter((row) => row.delta !== 0 && !Number.isNaN(row.delta))
        .sort((x, y) => Math.abs(y.delta) - Math.abs(x.delta))
        .slice(0, Number(options.rows));
      if (options.json)
        return printJson({
          a: { ref: a, model: left.model },
          b: { ref: b, model: right.model },
          scorers,
          changedRows: changed,
        });
      process.stdout.write(
        `A: ${a}\n   model ${left.model}\nB: ${b}\n   model ${right.model}\n\n` +
          `${formatTable(
            ['score', 'A', 'B', 'B − A'],
            scorers.map((entry) => [
              entry.name,
              entry.a.toFixed(3),
              entry.b.toFixed(3),
              `${entry.delta >= 0 ? '+' : ''}${entry.delta.toFixed(3)}`,
            ]),
          )}\n\nRows that changed most (${options.metric}):\n` +
          `${formatTable(
            ['row', 'id', 'A', 'B', 'B − A'],
            changed.map((row) => [
              row.rowIndex,
              row.id,
              row.a.toFixed(3),
              row.b.toFixed(3),
              `${row.delta >= 0 ? '+' : ''}${row.delta.toFixed(3)}`,
            ]),
          )}\n`,
      );
      const links = uiLinks(loadConfig().serveUrl);
      if (links) process.stdout.write(`\nWeb UI: ${links.compare([a, b])}\n`);
    });
}
