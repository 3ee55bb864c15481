/**
 * Evaluation throughput on the same RagModel and the same 80 held-out rows, side by side in one run:
 *   1. in-process, sequential: predict one row, score it, next row (the simplest loop)
 *   2. the weave SDK's Evaluation.evaluate, tracing into `weft serve` (what a Weave user runs today)
 *   3. weft's durable evaluateWorkflow: batches on the gpu worker, scoring on the orchestrator, every row a call
 * and, for (3), orchestration overhead: wall time minus the time activities ran, from the workflow's history.
 *
 *   npx tsx bench/evaluation-throughput.ts [--rows 80] [--batch-size 8] [--parallel 2]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import * as weave from 'weave';
import { parseConfig, projectRoot } from '../lib/config/config';
import { bootstrapDemoProject } from '../lib/rag';
import { scoredRowOf, scorerNamed } from '../lib/scoring/scorers';
import { openWorkerServices } from '../lib/services';
import { freePort, startDevServer } from '../lib/temporal/dev-server';
import { startWorkerProcess, workerKinds } from '../lib/temporal/stack';
import { startWeaveServer } from '../lib/weave-server';
import { taskQueues } from '../workflows/contracts/task-queues';
import type { evaluateWorkflow } from '../workflows';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

interface QaRow {
  id: string;
  question: string;
  answer: string;
  doc_id: string;
}

async function main(): Promise<void> {
  const rowsWanted = flag('rows', 80);
  const batchSize = flag('batch-size', 8);
  const parallel = flag('parallel', 2);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-eval-'));
  const sharedModels = parseConfig(process.env).modelsDir;
  const environment = {
    WEFT_HOME: home,
    WEFT_MODELS_DIR: sharedModels,
    WEFT_LINEAGE_URL: `sqlite://${path.join(home, 'lineage.db')}`,
    WEFT_GPU_SLOTS: String(parallel),
  };
  const services = await openWorkerServices(parseConfig({ ...process.env, ...environment }));
  const demo = await bootstrapDemoProject(services.rag, {
    dataDirectory: path.join(projectRoot, 'data', 'climate'),
    modelsDirectory: sharedModels,
    baseModel: 'base-chat',
  });
  const allRows = (await services.store.datasets.rows(demo.evaluationDatasetRef)) as unknown as QaRow[];
  const rows = allRows.slice(0, rowsWanted);
  const scorers = ['exact_match', 'f1', 'hit@5', 'mrr', 'groundedness'].map(scorerNamed);
  const scoreRow = (row: QaRow, prediction: Awaited<ReturnType<typeof services.rag.predict>>[number]) =>
    Object.fromEntries(scorers.map((scorer) => [scorer.name, scorer.score(scoredRowOf(row, prediction))]));

  // Warm the model sessions in this process so no contender pays the first load.
  await services.rag.predict(demo.ragModelRef, [rows[0].question]);

  // 1. In-process sequential loop.
  let started = performance.now();
  for (const row of rows) scoreRow(row, (await services.rag.predict(demo.ragModelRef, [row.question]))[0]);
  const sequentialSeconds = (performance.now() - started) / 1000;

  // 2. The weave SDK's Evaluation.evaluate, traced into weft serve in this process.
  const token = 'bench-token-0123456789';
  const server = await startWeaveServer({ store: services.store, token, port: 0 });
  process.env.WF_TRACE_SERVER_URL = server.url;
  process.env.WANDB_API_KEY = token;
  process.env.WEAVE_PRINT_CALL_LINK = 'false';
  const log = console.log;
  console.log = () => undefined; // the SDK prints a progress line per row
  const client = await weave.init('weft/bench-weave');
  const model = weave.op(async function ragModel({ datasetRow }: { datasetRow: QaRow }) {
    return (await services.rag.predict(demo.ragModelRef, [datasetRow.question]))[0];
  });
  const weaveScorers = scorers.map((scorer) =>
    weave.op(
      async ({
        datasetRow,
        modelOutput,
      }: {
        datasetRow: QaRow;
        modelOutput: Awaited<ReturnType<typeof services.rag.predict>>[number];
      }) => scoreRow(datasetRow, modelOutput)[scorer.name],
      { name: scorer.name.replace('@', '_at_') },
    ),
  );
  const evaluation = new weave.Evaluation({
    name: 'bench',
    dataset: new weave.Dataset({ name: 'bench-rows', rows: rows.map((row) => ({ ...row })) }),
    scorers: weaveScorers,
  });
  started = performance.now();
  await evaluation.evaluate({ model });
  const weaveSeconds = (performance.now() - started) / 1000;
  await client.waitForBatchProcessing();
  console.log = log;
  await server.close();

  // 3. The durable evaluateWorkflow on a dev server with the three real worker processes.
  const temporal = await startDevServer({ home, port: await freePort(), uiPort: await freePort() });
  const workerEnvironment = { ...environment, TEMPORAL_ADDRESS: temporal.address };
  const workers = await Promise.all(
    workerKinds.map((kind) => startWorkerProcess(kind, { home, environment: workerEnvironment })),
  );
  const connection = await Connection.connect({ address: temporal.address });
  const temporalClient = new Client({ connection });
  const evaluationRef = (
    await services.rag.publishEvaluation({
      dataset: (
        await services.store.datasets.publish({
          name: 'bench-rows',
          rows: rows as unknown as Record<string, unknown>[],
        })
      ).ref,
    })
  ).ref;
  const runEvaluation = async (workflowId: string) => {
    const begin = performance.now();
    const handle = await temporalClient.workflow.start<typeof evaluateWorkflow>('evaluateWorkflow', {
      taskQueue: taskQueues.pipeline,
      workflowId,
      args: [{ evaluationRef, ragModelRefs: [demo.ragModelRef], fresh: true, batchSize, maxParallelBatches: parallel }],
    });
    await handle.result();
    const seconds = (performance.now() - begin) / 1000;
    // Σ activity time: from each activity's start to its completion in the history.
    const history = await handle.fetchHistory();
    const startedAt = new Map<string, number>();
    let activitySeconds = 0;
    for (const event of history.events ?? []) {
      const time = Number(event.eventTime?.seconds ?? 0) + (event.eventTime?.nanos ?? 0) / 1e9;
      if (event.activityTaskStartedEventAttributes)
        startedAt.set(String(event.activityTaskStartedEventAttributes.scheduledEventId), time);
      if (event.activityTaskCompletedEventAttributes) {
        activitySeconds +=
          time - (startedAt.get(String(event.activityTaskCompletedEventAttributes.scheduledEventId)) ?? time);
      }
    }
    return { seconds, activitySeconds };
  };
  await runEvaluation('bench-warm-up'); // the workers load their model sessions once
  const durable = await runEvaluation('bench-measured');
  await connection.close();
  await Promise.all(workers.map((worker) => worker.stop()));
  await temporal.stop();
  await services.close();

  const rate = (seconds: number) => rows.length / seconds;
  const table = [
    ['in-process sequential', sequentialSeconds],
    ['weave Evaluation.evaluate → weft serve', weaveSeconds],
    [`weft evaluateWorkflow (batch ${batchSize}, ${parallel} in flight)`, durable.seconds],
  ] as const;
  console.log(`\nEvaluation of ${rows.length} rows, same RagModel, same machine, one run`);
  for (const [name, seconds] of table) {
    console.log(
      `${name.padEnd(48)} ${seconds.toFixed(1).padStart(6)} s  ${rate(seconds).toFixed(2).padStart(6)} rows/s`,
    );
  }
  console.log(`\nweft durable vs weave SDK:        ${(weaveSeconds / durable.seconds).toFixed(2)}x (goal ≥ 1.0x)`);
  console.log(`weft durable vs sequential loop:  ${(sequentialSeconds / durable.seconds).toFixed(2)}x`);
  const overhead = durable.seconds - durable.activitySeconds / parallel;
  console.log(
    `orchestration overhead: wall ${durable.seconds.toFixed(1)} s − Σ activity ${durable.activitySeconds.toFixed(1)} s / ${parallel} lanes = ${overhead.toFixed(1)} s ` +
      `(${((100 * overhead) / durable.seconds).toFixed(0)}% of wall; ${(overhead / Math.ceil(rows.length / batchSize)).toFixed(2)} s per batch)`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
