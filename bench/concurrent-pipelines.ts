/**
 * Starts N lifecycle pipelines at once on the tiny demo model (real dev server, the three real worker
 * processes) and reports the wall time until all have finished, with each run's outcome.
 *
 *   npx tsx bench/concurrent-pipelines.ts [--pipelines 20] [--max-steps 6] [--gpu-slots 2]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { parseConfig, projectRoot } from '../lib/config/config';
import { bootstrapDemoProject } from '../lib/rag';
import { openWorkerServices } from '../lib/services';
import { freePort, startDevServer } from '../lib/temporal/dev-server';
import { startWorkerProcess, workerKinds } from '../lib/temporal/stack';
import { taskQueues } from '../workflows/contracts/task-queues';
import type { lifecyclePipelineWorkflow } from '../workflows';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

async function main(): Promise<void> {
  const pipelines = flag('pipelines', 20);
  const maxSteps = flag('max-steps', 6);
  const gpuSlots = flag('gpu-slots', 2);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-pipelines-'));
  const sharedModels = parseConfig(process.env).modelsDir;
  const modelsDirectory = path.join(home, 'models');
  fs.mkdirSync(modelsDirectory);
  for (const name of ['base-chat', 'minilm'])
    fs.symlinkSync(path.join(sharedModels, name), path.join(modelsDirectory, name));
  const environment = {
    WEFT_HOME: home,
    WEFT_MODELS_DIR: modelsDirectory,
    WEFT_LINEAGE_URL: `sqlite://${path.join(home, 'lineage.db')}`,
    WEFT_GPU_SLOTS: String(gpuSlots),
  };
  const services = await openWorkerServices(parseConfig({ ...process.env, ...environment }));
  const demo = await bootstrapDemoProject(services.rag, {
    dataDirectory: path.join(projectRoot, 'data', 'climate'),
    modelsDirectory,
    baseModel: 'base-chat',
  });
  const server = await startDevServer({ home, port: await freePort(), uiPort: await freePort() });
  const workers = await Promise.all(
    workerKinds.map((kind) =>
      startWorkerProcess(kind, { home, environment: { ...environment, TEMPORAL_ADDRESS: server.address } }),
    ),
  );
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const started = performance.now();
  const handles = await Promise.all(
    Array.from({ length: pipelines }, (_, index) =>
      client.workflow.start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
        taskQueue: taskQueues.pipeline,
        workflowId: `concurrent-${index}`,
        args: [
          {
            app: 'climate-rag',
            baseModelRef: demo.baseModelArtifactRef,
            trainingDatasetRef: demo.trainingDatasetRef,
            evaluationRef: demo.evaluationRef,
            ragModelRef: demo.ragModelRef,
            trainingConfig: 'demo-cpu',
            hyperParameters: { max_steps: maxSteps, checkpoint_every: maxSteps },
            batchSize: 16,
          },
        ],
      }),
    ),
  );
  const outcomes = await Promise.all(
    handles.map((handle) =>
      handle.result().then(
        (result) => result.outcome as string,
        (error: unknown) => `failed: ${(error as Error).message}`,
      ),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  await connection.close();
  await Promise.all(workers.map((worker) => worker.stop()));
  await server.stop();
  await services.close();
  const counts = outcomes.reduce<Record<string, number>>(
    (tally, outcome) => ({ ...tally, [outcome]: (tally[outcome] ?? 0) + 1 }),
    {},
  );
  console.log(
    `${pipelines} lifecycle pipelines started at once (fine-tune ${maxSteps} steps each, ${gpuSlots} gpu slots, 2 cores)`,
  );
  console.log(
    `all finished in ${seconds.toFixed(0)} s (${(seconds / pipelines).toFixed(1)} s per pipeline); outcomes: ${JSON.stringify(counts)}`,
  );
  if (Object.keys(counts).some((outcome) => outcome.startsWith('failed'))) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
