import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { parseConfig, projectRoot } from '../../lib/config/config';
import { openWorkerServices, type WorkerServices } from '../../lib/services';
import { bootstrapDemoProject, type DemoProject } from '../../lib/rag';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal/dev-server';
import { startWorkerProcess, workerKinds, type WorkerKind, type WorkerProcess } from '../../lib/temporal/stack';
import { evaluationProgressQuery } from '../../workflows/contracts/evaluation';
import type { LifecyclePipelineInput } from '../../workflows/contracts/lifecycle';
import { taskQueues } from '../../workflows/contracts/task-queues';
import type { lifecyclePipelineWorkflow } from '../../workflows';
import { requireBuiltModels } from '../support/models';
import { runWeft } from '../support/cli';
import { waitFor } from '../support/wait';
import { parseCliJson } from '../weave/support/weave-server-fixture';
import { FaultProxy } from '../wandb/support/fault-proxy';
import { requireSdkVenv, startWandbServe, WANDB_TOKEN, type WandbServeFixture } from '../wandb/support/wandb-fixture';

/**
 * The whole lifecycle with publishing into W&B: a real dev server, the three real workers with WANDB_* set, the
 * tiny base-chat model, and a second `weft serve` as the W&B server (a fault injector in front of it only holds
 * or drops connections). Chaos: the registry worker is SIGKILLed while its commit of the chat model is in flight
 * (the commit then lands after the worker died), and the W&B server is stopped during the evaluation and started
 * again later. Then everything is read back through the remote store, `weft status`, and the real wandb/weave SDKs.
 */
describe('the pipeline publishes into a W&B server through W&B’s protocols', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-wandb-publish-'));
  const modelsDirectory = path.join(home, 'models');
  let server: DevServer;
  let environment: NodeJS.ProcessEnv;
  const workers = new Map<WorkerKind, WorkerProcess>();
  let services: WorkerServices;
  let demo: DemoProject;
  let client: Client;
  let connection: Connection;
  let remote: WandbServeFixture;
  let proxy: FaultProxy;

  async function startWorker(kind: WorkerKind) {
    workers.set(kind, await startWorkerProcess(kind, { home, environment }));
  }

  beforeAll(async () => {
    requireSdkVenv();
    const built = requireBuiltModels();
    fs.mkdirSync(modelsDirectory);
    fs.symlinkSync(path.dirname(built.chat), path.join(modelsDirectory, 'base-chat'));
    fs.symlinkSync(path.dirname(built.embedding), path.join(modelsDirectory, 'minilm'));
    remote = await startWandbServe();
    proxy = await FaultProxy.start(remote.url);
    server = await startDevServer({ home, port: await freePort(), uiPort: await freePort() });
    environment = {
      TEMPORAL_ADDRESS: server.address,
      WEFT_HOME: home,
      WEFT_MODELS_DIR: modelsDirectory,
      WEFT_LINEAGE_URL: `sqlite://${path.join(home, 'lineage.db')}`,
      WEFT_GPU_SLOTS: '2',
      WANDB_BASE_URL: proxy.url,
      WF_TRACE_SERVER_URL: proxy.url,
      WANDB_API_KEY: WANDB_TOKEN,
      WANDB_ENTITY: 'team-remote',
      WANDB_PROJECT: 'rag-remote',
      WANDB_ORG: 'weft',
    };
    services = await openWorkerServices(parseConfig({ ...environment }));
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
    await proxy?.stop();
    await remote?.dispose();
    // Half a gigabyte of runs, checkpoints and blobs: a test run must not leave it in the temp folder.
    fs.rmSync(home, { recursive: true, force: true });
  });

  const input: () => LifecyclePipelineInput = () => ({
    app: 'climate-rag',
    baseModelRef: demo.baseModelArtifactRef,
    trainingDatasetRef: demo.trainingDatasetRef,
    evaluationRef: demo.evaluationRef,
    ragModelRef: demo.ragModelRef,
    trainingConfig: 'demo-cpu',
    hyperParameters: { max_steps: 8, checkpoint_every: 4 },
    gate: { margin: -2 },
    batchSize: 8,
    maxParallelBatches: 2,
  });

  async function pendingAttempts(handle: WorkflowHandle, activityType: string): Promise<number> {
    const description = await handle.describe();
    const pending = description.raw.pendingActivities?.find((activity) => activity.activityType?.name === activityType);
    return pending?.attempt ?? 0;
  }

  it('publishes one run per stage, one version, one link and one production move, and every call, despite the chaos', async () => {
    // 1. Hold the first commit of an artifact (the chat model) and kill the registry worker while it is held.
    let releaseCommit!: () => void;
    const commitReleased = new Promise<void>((resolve) => (releaseCommit = resolve));
    let commitsHeld = 0;
    const created: string[] = [];
    proxy.decide = ({ operation, variables }) => {
      if (operation === 'WeftCreateArtifact') {
        created.push(String((variables?.input as { artifactCollectionName?: unknown }).artifactCollectionName));
      }
      if (operation === 'WeftCommitArtifact' && commitsHeld === 0) {
        commitsHeld += 1;
        return { action: 'hold', released: commitReleased };
      }
      return { action: 'forward' };
    };
    const handle = await client.workflow.start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
      taskQueue: taskQueues.pipeline,
      workflowId: 'wandb-pipeline',
      args: [input()],
    });
    await waitFor('the chat model’s commit in flight', async () => (commitsHeld > 0 ? true : undefined), 600_000);
    const registry = workers.get('registry')!;
    registry.process.kill('SIGKILL');
    await new Promise((resolve) => registry.process.once('exit', resolve));
    releaseCommit(); // the commit reaches W&B after its worker died: the activity's completion is lost
    await startWorker('registry');

    // 2. Stop the W&B server during the evaluation; bring it back once the publish of the calls has failed.
    const evaluation = client.workflow.getHandle('wandb-pipeline/evaluate');
    await waitFor('evaluation batches', async () => {
      const progress = await evaluation.query(evaluationProgressQuery);
      return progress.completedBatches >= 1 ? progress : undefined;
    });
    await remote.stop();
    await waitFor(
      'publishing the evaluation to fail against the stopped server',
      async () => ((await pendingAttempts(handle, 'publishEvaluationToWandb')) >= 2 ? true : undefined),
      600_000,
    );
    await remote.restart();
    proxy.upstream = remote.url;

    const result = await handle.result();
    expect(result.outcome).toBe('published');

    // One run per stage in W&B, each finished.
    const runs = await remote.store.runs.list({ entity: 'team-remote', project: 'rag-remote', limit: 100 });
    expect(runs.map((run) => [run.jobType, run.state]).sort()).toEqual([
      ['evaluation', 'finished'],
      ['fine-tune', 'finished'],
      ['publish', 'finished'],
    ]);
    // Exactly one version of the chat model although its commit was repeated after the kill; linked once.
    const chat = await remote.store.artifacts.get('wandb-artifact:///team-remote/rag-remote/climate-rag-chat:latest');
    expect(chat.version).toBe(0);
    // The retry found the version the killed attempt committed (by its heartbeated id or its digest): no second draft.
    expect(created.filter((name) => name === 'climate-rag-chat')).toHaveLength(1);
    const chatLinks = await remote.store.registry.versions(
      'wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag',
    );
    expect(chatLinks).toHaveLength(1);
    expect(chatLinks[0]!.aliases).toContain('candidate');
    const local = await services.store.artifacts.get(result.refs.chatModelArtifactRef!);
    expect(chat.manifest.map((entry) => [entry.path, entry.digest])).toEqual(
      local.manifest.map((entry) => [entry.path, entry.digest]),
    );
    // The RagModel: one reference artifact, one link, one production move.
    const ragLinks = await remote.store.registry.versions('wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model');
    expect(ragLinks).toHaveLength(1);
    const moves = await remote.store.registry.aliasHistory(
      'wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model',
      'production',
    );
    expect(moves.map((move) => move.toVersion)).toEqual([0]);
    // Every call of the evaluation, none twice, each with its wandb-run-id.
    const evaluationRun = runs.find((run) => run.jobType === 'evaluation')!;
    const localCalls = await services.store.calls.query({
      attributes: { 'wandb-run-id': evaluationRun.id },
      limit: 100_000,
    });
    const remoteCalls = await remote.store.calls.query({
      entity: 'team-remote',
      project: 'rag-remote',
      attributes: { 'wandb-run-id': evaluationRun.id },
      limit: 100_000,
    });
    expect(localCalls.length).toBeGreaterThan(result.evaluation.rowCount * 2);
    expect(remoteCalls.map((call) => call.id).sort()).toEqual(localCalls.map((call) => call.id).sort());
    expect(remoteCalls.every((call) => call.endedAt !== null)).toBe(true);

    // `weft status` shows the remote refs.
    const status = await runWeft(['status', 'wandb-pipeline'], { ...environment });
    expect(status.stdout).toContain(
      'wandb.production: wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model:production',
    );
    expect(status.stdout).toContain(`wandb.evaluationCalls: ${localCalls.length} calls`);

    // Read back with the real SDKs (wandb.Api(), weave) from .venv-sdk.
    const read = await remote.python('read_published.py', {
      SEED_ENTITY: 'team-remote',
      SEED_PROJECT: 'rag-remote',
      SEED_ORG: 'weft',
      READ_APP: 'climate-rag',
      READ_RAG_COLLECTION: 'RAG Model',
      READ_EVAL_RUN_ID: evaluationRun.id,
      READ_DOWNLOAD_DIR: path.join(home, 'downloads'),
    });
    if (read.code !== 0) throw new Error(`read_published.py exited with ${read.code}:\n${read.output.slice(-6000)}`);
    expect(read.result).toMatchObject({
      chat_version: 'v0',
      chat_type: 'model',
      published_version: 'v0',
      published_type: 'rag-model',
      published_aliases: ['latest', 'production'],
      calls_in_run: localCalls.length,
      calls_ended: localCalls.length,
    });
    expect(read.result.chat_aliases).toEqual(expect.arrayContaining(['candidate']));
    expect(Object.keys(read.result.chat_files as object).sort()).toEqual(
      local.manifest.map((entry) => entry.path).sort(),
    );
    const digest = String(read.result.reference).split(':').pop()!;
    expect(read.result.source_aliases).toEqual(expect.arrayContaining([digest]));
    expect(read.result.rag_model_loaded).toBe(true);

    // `weft sync` finds nothing missing; into another project it replays everything, once.
    const again = parseCliJson<{ outcome: string }[]>(await runWeft(['sync', '--json'], { ...environment }));
    expect(new Set(again.map((entry) => entry.outcome))).toEqual(new Set(['already']));
    // A W&B server that has none of it (a third weft serve): `weft sync` replays everything, then nothing.
    const target = await startWandbServe();
    try {
      const elsewhere = { ...environment, WANDB_BASE_URL: target.url, WF_TRACE_SERVER_URL: target.url };
      const replayed = parseCliJson<{ item: string; outcome: string }[]>(await runWeft(['sync', '--json'], elsewhere));
      expect(replayed.map((entry) => entry.outcome)).not.toContain('already');
      expect(replayed.length).toBeGreaterThanOrEqual(3);
      const syncedCalls = await target.store.calls.query({
        entity: 'team-remote',
        project: 'rag-remote',
        attributes: { 'wandb-run-id': evaluationRun.id },
        limit: 100_000,
      });
      expect(syncedCalls).toHaveLength(localCalls.length);
      expect(
        (await target.store.registry.resolve('wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model:production'))
          .version,
      ).toBe(0);
      const second = parseCliJson<{ outcome: string }[]>(await runWeft(['sync', '--json'], elsewhere));
      expect(new Set(second.map((entry) => entry.outcome))).toEqual(new Set(['already']));
    } finally {
      await target.dispose();
    }
  }, 1_200_000);
});
