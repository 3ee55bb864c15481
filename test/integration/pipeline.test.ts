import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { parseConfig, projectRoot } from '../../lib/config/config';
import { openWorkerServices, type WorkerServices } from '../../lib/services';
import { bootstrapDemoProject, chatModelCollectionRef, ragModelCollectionRef, type DemoProject } from '../../lib/rag';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal/dev-server';
import { startWorkerProcess, workerKinds, type WorkerKind, type WorkerProcess } from '../../lib/temporal/stack';
import { evaluationProgressQuery } from '../../workflows/contracts/evaluation';
import { lifecycleProgressQuery, type LifecyclePipelineInput } from '../../workflows/contracts/lifecycle';
import { taskQueues } from '../../workflows/contracts/task-queues';
import type { lifecyclePipelineWorkflow } from '../../workflows';
import { requireBuiltModels } from '../support/models';
import { weftAppSearchAttribute } from '../../workflows/contracts/search-attributes';
import { waitFor } from '../support/wait';

function trainerProcesses(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', `trainer.finetune.*${marker}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe('lifecycle pipeline on the real dev server, real workers, real models', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-pipeline-'));
  const modelsDirectory = path.join(home, 'models');
  let server: DevServer;
  let environment: NodeJS.ProcessEnv;
  const workers = new Map<WorkerKind, WorkerProcess>();
  let services: WorkerServices;
  let demo: DemoProject;
  let client: Client;
  let connection: Connection;

  async function startWorker(kind: WorkerKind) {
    workers.set(kind, await startWorkerProcess(kind, { home, environment }));
  }

  async function killWorker(kind: WorkerKind) {
    const worker = workers.get(kind)!;
    worker.process.kill('SIGKILL');
    await new Promise((resolve) => worker.process.once('exit', resolve));
  }

  beforeAll(async () => {
    const built = requireBuiltModels();
    // Runs write into the models folder: give the test its own, holding links to the models setup built.
    fs.mkdirSync(modelsDirectory);
    fs.symlinkSync(path.dirname(built.chat), path.join(modelsDirectory, 'base-chat'));
    fs.symlinkSync(path.dirname(built.embedding), path.join(modelsDirectory, 'minilm'));
    const port = await freePort();
    server = await startDevServer({ home, port, uiPort: await freePort() });
    environment = {
      TEMPORAL_ADDRESS: server.address,
      WEFT_HOME: home,
      WEFT_MODELS_DIR: modelsDirectory,
      WEFT_LINEAGE_URL: `sqlite://${path.join(home, 'lineage.db')}`,
      WEFT_GPU_SLOTS: '2',
    };
    const config = parseConfig({ ...environment });
    services = await openWorkerServices(config);
    demo = await bootstrapDemoProject(services.rag, {
      dataDirectory: path.join(projectRoot, 'data', 'climate'),
      modelsDirectory,
      baseModel: 'base-chat',
    });
    await Promise.all(workerKinds.map(startWorker));
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection });
  }, 300_000);

  afterAll(async () => {
    await connection?.close();
    await Promise.all([...workers.values()].map((worker) => worker.stop()));
    await services?.close();
    await server?.stop();
    // Half a gigabyte of runs, checkpoints and blobs: a test run must not leave it in the temp folder.
    fs.rmSync(home, { recursive: true, force: true });
  });

  const input = (overrides: Partial<LifecyclePipelineInput> = {}): LifecyclePipelineInput => ({
    app: 'climate-rag',
    baseModelRef: demo.baseModelArtifactRef,
    trainingDatasetRef: demo.trainingDatasetRef,
    evaluationRef: demo.evaluationRef,
    ragModelRef: demo.ragModelRef,
    trainingConfig: 'demo-cpu',
    hyperParameters: { max_steps: 24, checkpoint_every: 6 },
    // This test is about durability, not quality: a gate that passes whatever the scores.
    gate: { margin: -2 },
    batchSize: 8,
    maxParallelBatches: 2,
    ...overrides,
  });

  async function trainingHeartbeat(handle: WorkflowHandle) {
    const description = await handle.describe();
    const payload = description.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
    return payload
      ? defaultPayloadConverter.fromPayload<{ step: number; checkpoint: string | null }>(payload)
      : undefined;
  }

  it('survives SIGKILLs of the gpu worker (training, evaluation) and the registry worker, publishing exactly once', async () => {
    const handle = await client.workflow.start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
      taskQueue: taskQueues.pipeline,
      workflowId: 'chaos-pipeline',
      args: [input()],
    });

    // 1. Kill the gpu worker once the trainer has written a checkpoint; the retry must resume from it.
    await waitFor('a training checkpoint', async () => {
      const beat = await trainingHeartbeat(handle);
      return beat?.checkpoint ? beat : undefined;
    });
    await killWorker('gpu');
    await startWorker('gpu');

    // 2. Kill it again in the middle of the evaluation.
    const evaluation = client.workflow.getHandle('chaos-pipeline/evaluate');
    await waitFor('evaluation batches to complete', async () => {
      const progress = await evaluation.query(evaluationProgressQuery);
      return progress.completedBatches >= 3 ? progress : undefined;
    });
    await killWorker('gpu');
    await startWorker('gpu');

    // 3. Kill the registry worker before publish; the publish waits for a registry worker to come back.
    await waitFor('the gate', async () => {
      const progress = await handle.query(lifecycleProgressQuery);
      return ['gate', 'publish', 'done'].includes(progress.stage) ? progress : undefined;
    });
    await killWorker('registry');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await startWorker('registry');

    const result = await handle.result();
    expect(result.outcome).toBe('published');
    expect(result.training.resumedFromStep).toBeGreaterThan(0);
    expect(result.training.steps).toBe(24);
    // Every row of both models accounted for once: predicted, or taken from an earlier attempt.
    expect(result.evaluation.predictedRows + result.evaluation.cachedRows).toBe(2 * result.evaluation.rowCount);

    const collection = ragModelCollectionRef('weft', 'climate-rag');
    const versions = await services.store.registry.versions(collection);
    expect(versions).toHaveLength(1);
    const moves = await services.store.registry.aliasHistory(collection, 'production');
    expect(moves).toHaveLength(1);
    expect(versions[0].artifact.metadata.url).toBe(result.refs.challengerRagModelRef);

    // One fine-tuned model version, linked once into the app's chat-model collection.
    const chatVersions = await services.store.registry.versions(chatModelCollectionRef('weft', 'climate-rag'));
    expect(chatVersions).toHaveLength(1);

    // Visible in the Temporal UI's search: the app search attribute and the refs in the memo.
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(weftAppSearchAttribute)).toBe('climate-rag');
    expect((description.memo?.refs as { publishedRegistryRef?: string }).publishedRegistryRef).toBe(
      result.refs.publishedRegistryRef,
    );

    // Starting the same business key again does not run it twice.
    const again = await client.workflow
      .start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
        taskQueue: taskQueues.pipeline,
        workflowId: 'chaos-pipeline',
        args: [input()],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      })
      .catch((error: unknown) => error);
    expect(again).toBeInstanceOf(Error);
    expect(await services.store.registry.versions(collection)).toHaveLength(1);
  }, 900_000);

  it('cancelling the workflow mid-training stops the trainer process within seconds', async () => {
    const handle = await client.workflow.start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
      taskQueue: taskQueues.pipeline,
      workflowId: 'cancel-pipeline',
      args: [input({ hyperParameters: { max_steps: 400, checkpoint_every: 100 } })],
    });
    await waitFor('training progress', async () => {
      const beat = await trainingHeartbeat(handle);
      return beat && beat.step > 0 ? beat : undefined;
    });
    expect(trainerProcesses('cancel-pipeline').length).toBeGreaterThan(0);
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
    await waitFor(
      'the trainer to exit',
      async () => (trainerProcesses('cancel-pipeline').length === 0 ? true : undefined),
      30_000,
    );
    expect((await handle.describe()).status.name).toBe('CANCELLED');
  }, 300_000);

  it.each([
    [
      'a training dataset whose rows lack a field',
      async () => ({
        trainingDatasetRef: (
          await services.store.datasets.publish({ name: 'broken-train', rows: [{ question: 'q', answer: 'a' }] })
        ).ref,
      }),
      /fine-tune failed: Row 0 of the training dataset .* is missing context/,
    ],
    [
      'a nonsense hyper-parameter',
      async () => ({ hyperParameters: { learning_rate: -1 } }),
      // Refused by the validate step, before the trainer starts.
      /validate failed: 1 invalid input; nothing was written:\n- --hp: hyper-parameter learning_rate must be in \(0, 1\), got -1/,
    ],
    [
      'an unknown hyper-parameter',
      async () => ({ hyperParameters: { warp_factor: 9 } }),
      /validate failed: 1 invalid input; nothing was written:\n- --hp: unknown hyper-parameter 'warp_factor'; allowed: epochs, max_steps/,
    ],
  ])(
    'bad input (%s) fails the run at once with a message naming it, and logs nothing',
    async (_name, change, message) => {
      const before = await services.store.counts();
      const handle = await client.workflow.start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
        taskQueue: taskQueues.pipeline,
        workflowId: `bad-input-${Date.now()}`,
        args: [input(await change())],
      });
      const failure = await handle.result().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect(String((failure as WorkflowFailedError).cause?.message)).toMatch(message);
      const after = await services.store.counts();
      expect(after.artifact_versions).toBe(before.artifact_versions);
      expect(after.collection_members).toBe(before.collection_members);
    },
  );
});
