/**
 * The same N lifecycle pipelines (tiny demo model, demo-cpu recipe) on the Temporal dev server (SQLite) and on a
 * Temporal Server cluster on PostgreSQL, one after the other in this process, with the same workers (2 of each kind,
 * WEFT_GPU_SLOTS=1) and the same lineage store kind (PostgreSQL): the wall time ratio, pipelines per minute, and
 * where the time went (per activity type: mean time in the queue, mean run time; workflow-task latency).
 *
 *   bash scripts/build-temporal-server.sh && npx tsx bench/cluster-vs-dev-server.ts [--pipelines 10] [--max-steps 6]
 *
 * PostgreSQL: WEFT_TEST_POSTGRES_URL, else the server scripts/ensure-postgres.sh brings up.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { Client as PostgresClient } from 'pg';
import { parseConfig, projectRoot } from '../lib/config/config';
import { bootstrapDemoProject } from '../lib/rag';
import { openWorkerServices } from '../lib/services';
import { startClusterServer } from '../lib/temporal/cluster';
import { freePort, startDevServer } from '../lib/temporal/dev-server';
import { startWorkerProcess, workerKinds, type WorkerProcess } from '../lib/temporal/stack';
import type { LifecyclePipelineResult } from '../workflows/contracts/lifecycle';
import { taskQueues } from '../workflows/contracts/task-queues';
import type { lifecyclePipelineWorkflow } from '../workflows';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const seconds = (time: temporal.api.history.v1.IHistoryEvent['eventTime']) =>
  Number(time?.seconds ?? 0) + (time?.nanos ?? 0) / 1e9;

interface Timings {
  /** activity type → [time in queue, run time] in seconds, one pair per completed attempt. */
  activities: Map<string, [number, number][]>;
  workflowTaskSeconds: number[];
}

function addHistory(history: temporal.api.history.v1.IHistory, timings: Timings) {
  const scheduled = new Map<string, { type: string; at: number }>();
  const startedAt = new Map<string, number>();
  let workflowTaskScheduled = 0;
  for (const event of history.events ?? []) {
    const id = String(event.eventId);
    const at = seconds(event.eventTime);
    if (event.activityTaskScheduledEventAttributes) {
      scheduled.set(id, { type: event.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at });
    } else if (event.activityTaskStartedEventAttributes) {
      startedAt.set(String(event.activityTaskStartedEventAttributes.scheduledEventId), at);
    } else if (event.activityTaskCompletedEventAttributes) {
      const key = String(event.activityTaskCompletedEventAttributes.scheduledEventId);
      const task = scheduled.get(key);
      const started = startedAt.get(key);
      if (task && started !== undefined) {
        const list = timings.activities.get(task.type) ?? [];
        list.push([started - task.at, at - started]);
        timings.activities.set(task.type, list);
      }
    } else if (event.workflowTaskScheduledEventAttributes) {
      workflowTaskScheduled = at;
    } else if (event.workflowTaskCompletedEventAttributes) {
      timings.workflowTaskSeconds.push(at - workflowTaskScheduled);
    }
  }
}

async function runOnce(kind: 'dev-server' | 'cluster', pipelines: number, maxSteps: number, postgresUrl: string) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `weft-bench-${kind}-`));
  const sharedModels = parseConfig(process.env).modelsDir;
  const modelsDirectory = path.join(home, 'models');
  fs.mkdirSync(modelsDirectory);
  for (const name of ['base-chat', 'minilm'])
    fs.symlinkSync(path.join(sharedModels, name), path.join(modelsDirectory, name));
  const suffix = `${kind.replace('-', '_')}_${process.pid}`;
  const databases = {
    default: `temporal_${suffix}`,
    visibility: `temporal_vis_${suffix}`,
    lineage: `lineage_${suffix}`,
  };
  const admin = async (sql: string) => {
    const client = new PostgresClient({ connectionString: postgresUrl });
    await client.connect();
    await client.query(sql).finally(() => client.end());
  };
  await admin(`CREATE DATABASE ${databases.lineage}`);
  const lineageUrl = new URL(postgresUrl);
  lineageUrl.pathname = `/${databases.lineage}`;
  const server =
    kind === 'cluster'
      ? await startClusterServer({ folder: path.join(home, 'temporal-cluster'), postgresUrl, databases })
      : await startDevServer({ home, port: await freePort(), uiPort: await freePort() });
  const environment = {
    TEMPORAL_ADDRESS: server.address,
    WEFT_HOME: home,
    WEFT_MODELS_DIR: modelsDirectory,
    WEFT_LINEAGE_URL: lineageUrl.toString(),
    WEFT_GPU_SLOTS: '1',
  };
  const services = await openWorkerServices(parseConfig({ ...process.env, ...environment }));
  const workers: WorkerProcess[] = [];
  try {
    const demo = await bootstrapDemoProject(services.rag, {
      dataDirectory: path.join(projectRoot, 'data', 'climate'),
      modelsDirectory,
      baseModel: 'base-chat',
    });
    const rows = fs
      .readFileSync(path.join(projectRoot, 'data', 'climate', 'qa-eval.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(0, 16)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const dataset = await services.store.datasets.publish({ name: 'bench-qa-eval', rows });
    const evaluation = await services.rag.publishEvaluation({ dataset: dataset.ref, scorers: ['f1', 'exact_match'] });
    workers.push(
      ...(await Promise.all(
        workerKinds.flatMap((workerKind) =>
          ['a', 'b'].map((instance) => startWorkerProcess(workerKind, { home, instance, environment })),
        ),
      )),
    );
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    const started = performance.now();
    const handles = await Promise.all(
      Array.from({ length: pipelines }, (_, index) =>
        client.workflow.start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
          taskQueue: taskQueues.pipeline,
          workflowId: `bench-${index}`,
          args: [
            {
              app: `bench-app-${index}`,
              baseModelRef: demo.baseModelArtifactRef,
              trainingDatasetRef: demo.trainingDatasetRef,
              evaluationRef: evaluation.ref,
              ragModelRef: demo.ragModelRef,
              trainingConfig: 'demo-cpu',
              hyperParameters: { max_steps: maxSteps, checkpoint_every: 2 },
              gate: { margin: -2 },
              batchSize: 8,
              maxParallelBatches: 2,
            },
          ],
        }),
      ),
    );
    const results = (await Promise.all(handles.map((handle) => handle.result()))) as LifecyclePipelineResult[];
    const wallSeconds = (performance.now() - started) / 1000;
    const timings: Timings = { activities: new Map(), workflowTaskSeconds: [] };
    for (const handle of handles) {
      addHistory(await handle.fetchHistory(), timings);
      addHistory(await client.workflow.getHandle(`${handle.workflowId}/evaluate`).fetchHistory(), timings);
    }
    await connection.close();
    return { kind, wallSeconds, outcomes: results.map((result) => result.outcome), timings };
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await services.close();
    await server.stop();
    for (const database of Object.values(databases))
      await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
  }
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);

async function main(): Promise<void> {
  const pipelines = flag('pipelines', 10);
  const maxSteps = flag('max-steps', 6);
  const postgresUrl =
    process.env.WEFT_TEST_POSTGRES_URL ??
    execFileSync('bash', [path.join(projectRoot, 'scripts', 'ensure-postgres.sh')], { encoding: 'utf8' }).trim();
  const runs = [];
  for (const kind of ['dev-server', 'cluster'] as const) {
    process.stderr.write(`[bench] ${pipelines} pipelines on the ${kind}…\n`);
    runs.push(await runOnce(kind, pipelines, maxSteps, postgresUrl));
  }
  for (const run of runs) {
    console.log(
      `${run.kind}: ${pipelines} pipelines in ${run.wallSeconds.toFixed(1)} s = ${((pipelines * 60) / run.wallSeconds).toFixed(2)} pipelines/min; ` +
        `outcomes ${JSON.stringify(Object.fromEntries([...new Set(run.outcomes)].map((o) => [o, run.outcomes.filter((x) => x === o).length])))}`,
    );
    console.log(
      `  workflow tasks: ${run.timings.workflowTaskSeconds.length}, mean ${(mean(run.timings.workflowTaskSeconds) * 1000).toFixed(0)} ms scheduled→completed`,
    );
    for (const [type, pairs] of [...run.timings.activities].sort()) {
      console.log(
        `  ${type.padEnd(28)} ×${String(pairs.length).padStart(4)}  queue ${mean(pairs.map((p) => p[0])).toFixed(2)} s  run ${mean(pairs.map((p) => p[1])).toFixed(2)} s`,
      );
    }
  }
  const [dev, cluster] = runs;
  console.log(
    `cluster / dev server wall time: ${(cluster.wallSeconds / dev.wallSeconds).toFixed(2)}×; ` +
      `pipelines/min ${((pipelines * 60) / cluster.wallSeconds).toFixed(2)} vs ${((pipelines * 60) / dev.wallSeconds).toFixed(2)}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
