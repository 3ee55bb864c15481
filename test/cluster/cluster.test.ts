/**
 * weft on a real Temporal Server cluster (`npm run test:cluster`; not in `npm test`: the server is built from Go
 * source once, and the run takes minutes on 2 cores). The Temporal Server on PostgreSQL (persistence and SQL
 * visibility), the lineage store on PostgreSQL, blobs in one shared WEFT_HOME, and 2 orchestrator, 2 gpu and 2
 * registry worker processes, each in a process group of its own (a "host"). 10 lifecycle pipelines start at once;
 * during the run one worker of each kind is SIGKILLed (its whole group: a gpu worker takes its trainer with it) and
 * the Temporal Server process is killed and started again. Nothing may be lost or doubled.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { Client as PostgresClient } from 'pg';
import { parseConfig, projectRoot } from '../../lib/config/config';
import { bootstrapDemoProject, chatModelCollectionRef, ragModelCollectionRef } from '../../lib/rag';
import { openWorkerServices, type WorkerServices } from '../../lib/services';
import { startClusterServer, type ClusterServer } from '../../lib/temporal/cluster';
import { startWorkerProcess, type WorkerKind, type WorkerProcess } from '../../lib/temporal/stack';
import type { LifecyclePipelineInput, LifecyclePipelineResult } from '../../workflows/contracts/lifecycle';
import type { ReevaluateWorkflowResult } from '../../workflows/contracts/reevaluation';
import { weftStageSearchAttribute } from '../../workflows/contracts/search-attributes';
import { taskQueues } from '../../workflows/contracts/task-queues';
import type { lifecyclePipelineWorkflow } from '../../workflows';
import { runWeft } from '../support/cli';
import { requireBuiltModels } from '../support/models';
import { temporalCliForTests } from '../support/temporal';
import { waitFor } from '../support/wait';

const run = promisify(execFile);
const apps = Array.from({ length: 10 }, (_, index) => `cluster-app-${index}`);
const namespace = 'weft-cluster';

describe('weft on a Temporal Server cluster on PostgreSQL, 2 workers of each kind, faults across hosts', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cluster-'));
  const modelsDirectory = path.join(home, 'models');
  const suffix = `${process.pid}_${Date.now().toString(36)}`;
  const databases = {
    default: `temporal_${suffix}`,
    visibility: `temporal_vis_${suffix}`,
    lineage: `lineage_${suffix}`,
  };
  const postgresUrl = process.env.WEFT_TEST_POSTGRES_URL!;
  let server: ClusterServer;
  let environment: NodeJS.ProcessEnv;
  let services: WorkerServices;
  let connection: Connection;
  let client: Client;
  const workers = new Map<string, WorkerProcess>();

  const lineageUrl = () => {
    const url = new URL(postgresUrl);
    url.pathname = `/${databases.lineage}`;
    return url.toString();
  };

  async function startWorker(kind: WorkerKind, instance: string) {
    const worker = await startWorkerProcess(kind, { home, instance, environment, ownProcessGroup: true });
    workers.set(`${kind}-${instance}`, worker);
  }

  /** The "host" dies: SIGKILL to the worker's process group, so nothing of it runs its cleanup. */
  async function killHost(kind: WorkerKind, instance: string) {
    const worker = workers.get(`${kind}-${instance}`)!;
    const exited = new Promise((resolve) => worker.process.once('exit', resolve));
    process.kill(-worker.process.pid!, 'SIGKILL');
    await exited;
  }

  async function adminQuery(sql: string) {
    const admin = new PostgresClient({ connectionString: postgresUrl });
    await admin.connect();
    try {
      await admin.query(sql);
    } finally {
      await admin.end();
    }
  }

  beforeAll(async () => {
    const built = requireBuiltModels();
    fs.mkdirSync(modelsDirectory);
    fs.symlinkSync(path.dirname(built.chat), path.join(modelsDirectory, 'base-chat'));
    fs.symlinkSync(path.dirname(built.embedding), path.join(modelsDirectory, 'minilm'));
    await adminQuery(`CREATE DATABASE ${databases.lineage}`);
    server = await startClusterServer({
      folder: path.join(home, 'temporal-cluster'),
      postgresUrl,
      databases,
      namespace,
    });
    environment = {
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: namespace,
      WEFT_HOME: home,
      WEFT_MODELS_DIR: modelsDirectory,
      WEFT_LINEAGE_URL: lineageUrl(),
      WEFT_GPU_SLOTS: '1',
    };
    services = await openWorkerServices(parseConfig({ ...environment }));
    await Promise.all(
      (['orchestrator', 'gpu', 'registry'] as const).flatMap((kind) =>
        ['a', 'b'].map((instance) => startWorker(kind, instance)),
      ),
    );
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection, namespace });
  }, 600_000);

  afterAll(async () => {
    await connection?.close();
    await Promise.all(
      [...workers.values()].map(async (worker) => {
        await worker.stop();
      }),
    );
    await services?.close();
    await server?.stop();
    for (const database of Object.values(databases)) {
      await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    }
    fs.rmSync(home, { recursive: true, force: true });
  }, 120_000);

  it('registered the namespace and search attributes; weft doctor sees the cluster and its pollers', async () => {
    expect(server.setup).toEqual({
      namespace,
      namespaceCreated: true,
      searchAttributesCreated: [
        'WeftStage',
        'WeftApp',
        'WeftChatModelVersion',
        'WeftGateDecision',
        'WeftScore',
        'WeftRegression',
      ],
    });
    const doctor = await runWeft(['doctor', '--only', 'temporal', '--json'], environment);
    expect(doctor.code).toBe(0);
    const checks = (JSON.parse(doctor.stdout) as { checks: { name: string; status: string; detail: string }[] }).checks;
    expect(Object.fromEntries(checks.map((check) => [check.name, check.status]))).toEqual({
      temporal: 'ok',
      namespace: 'ok',
      'search-attributes': 'ok',
      'task-queues': 'ok',
    });
    expect(checks.find((check) => check.name === 'temporal')!.detail).toContain('1.32.1');
    expect(checks.find((check) => check.name === 'task-queues')!.detail).toContain('weft-gpu: 2 gpu worker(s)');
  }, 120_000);

  it('runs 10 pipelines to completion through worker and server crashes: one version and one move per app', async () => {
    const demo = await bootstrapDemoProject(services.rag, {
      dataDirectory: path.join(projectRoot, 'data', 'climate'),
      modelsDirectory,
      baseModel: 'base-chat',
    });
    // A light evaluation: the first 16 held-out questions (the demo's has 80).
    const rows = fs
      .readFileSync(path.join(projectRoot, 'data', 'climate', 'qa-eval.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(0, 16)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const dataset = await services.store.datasets.publish({ name: 'cluster-qa-eval', rows });
    const evaluation = await services.rag.publishEvaluation({ dataset: dataset.ref, scorers: ['f1', 'exact_match'] });

    // A schedule on the cluster, firing every minute, for an app with no production version (each run ends at once).
    const created = await runWeft(
      [
        'schedule',
        'create',
        '--app',
        'cluster-schedule',
        '--evaluation',
        evaluation.ref,
        '--cron',
        '* * * * *',
        '--json',
      ],
      environment,
    );
    expect(created.stderr).toBe('');

    const input = (app: string): LifecyclePipelineInput => ({
      app,
      baseModelRef: demo.baseModelArtifactRef,
      trainingDatasetRef: demo.trainingDatasetRef,
      evaluationRef: evaluation.ref,
      ragModelRef: demo.ragModelRef,
      trainingConfig: 'demo-cpu',
      hyperParameters: { max_steps: 6, checkpoint_every: 2 },
      // Durability, not quality: a gate that passes whatever the scores.
      gate: { margin: -2 },
      batchSize: 8,
      maxParallelBatches: 2,
    });
    const handles: WorkflowHandle<typeof lifecyclePipelineWorkflow>[] = await Promise.all(
      apps.map((app) =>
        client.workflow.start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
          taskQueue: taskQueues.pipeline,
          workflowId: `cluster/${app}`,
          args: [input(app)],
        }),
      ),
    );
    const stages = async () =>
      Promise.all(
        handles.map(async (handle) => {
          const description = await handle.describe();
          return description.typedSearchAttributes.get(weftStageSearchAttribute) ?? 'starting';
        }),
      );
    const past = (stage: string, order: string[]) => order.indexOf(stage);
    const order = ['starting', 'validate', 'fine-tune', 'register', 'integrate', 'evaluate', 'gate', 'publish', 'done'];

    // 1. Once some runs train and others evaluate, one host of each kind dies; new ones take their place.
    await waitFor(
      'a run past fine-tuning',
      async () => ((await stages()).some((stage) => past(stage, order) >= past('register', order)) ? true : undefined),
      1_200_000,
    );
    for (const kind of ['gpu', 'orchestrator', 'registry'] as const) await killHost(kind, 'a');
    await Promise.all((['gpu', 'orchestrator', 'registry'] as const).map((kind) => startWorker(kind, 'a')));

    // 2. Later, the Temporal Server process crashes (SIGKILL) and starts again on the same databases.
    await waitFor(
      'three runs past fine-tuning',
      async () =>
        (await stages()).filter((stage) => past(stage, order) >= past('register', order)).length >= 3
          ? true
          : undefined,
      1_200_000,
    );
    await server.restart();

    // Results are awaited after the restart: a long poll cut by the crash would fail the wait, not the run.
    const settled = await Promise.allSettled(
      handles.map((handle) => handle.result().then((result) => result as LifecyclePipelineResult)),
    );
    const failures = settled.flatMap((outcome, index) =>
      outcome.status === 'rejected' ? [`${apps[index]}: ${String(outcome.reason)}`] : [],
    );
    expect(failures).toEqual([]);
    const finished = settled.map((outcome) => (outcome as PromiseFulfilledResult<LifecyclePipelineResult>).value);
    expect(finished.map((result) => result.outcome)).toEqual(apps.map(() => 'published'));

    // Nothing lost, nothing doubled: per app one fine-tuned chat-model version, one RAG Models version, one move.
    const org = parseConfig(environment).org;
    const counts = await Promise.all(
      apps.map(async (app) => ({
        app,
        chatModelVersions: (await services.store.registry.versions(chatModelCollectionRef(org, app))).length,
        ragModelVersions: (await services.store.registry.versions(ragModelCollectionRef(org, app))).length,
        productionMoves: (await services.store.registry.aliasHistory(ragModelCollectionRef(org, app), 'production'))
          .length,
      })),
    );
    expect(counts).toEqual(apps.map((app) => ({ app, chatModelVersions: 1, ragModelVersions: 1, productionMoves: 1 })));
    for (const [index, result] of finished.entries()) {
      const versions = await services.store.registry.versions(ragModelCollectionRef(org, apps[index]));
      expect(versions[0].artifact.metadata.url).toBe(result.refs.challengerRagModelRef);
    }

    // Search attributes on SQL visibility, through the Temporal CLI.
    const list = async (query: string) => {
      const { stdout } = await run(temporalCliForTests(), [
        'workflow',
        'list',
        '--address',
        server.address,
        '--namespace',
        namespace,
        '--query',
        query,
        '--output',
        'json',
      ]);
      return (stdout.trim() === '' ? [] : (JSON.parse(stdout) as { execution: { workflowId: string } }[]))
        .map((entry) => entry.execution.workflowId)
        .sort();
    };
    expect(await list(`WeftApp = "${apps[3]}"`)).toEqual([`cluster/${apps[3]}`]);
    await waitFor('visibility to list all 10 finished runs', async () => {
      const done = await list(
        'WorkflowType = "lifecyclePipelineWorkflow" AND WeftStage = "done" AND WeftGateDecision IS NOT NULL AND WeftScore >= 0',
      );
      return done.length === 10 ? done : undefined;
    });
    expect(
      await list('WorkflowType = "lifecyclePipelineWorkflow" AND WeftStage = "done" AND WeftGateDecision IS NOT NULL'),
    ).toEqual(apps.map((app) => `cluster/${app}`).sort());
    expect(await list('WeftApp = "no-such-app"')).toEqual([]);

    // The schedule fired on the cluster (through the restart) and its run finished.
    const schedule = client.schedule.getHandle('weft-reevaluate-cluster-schedule');
    const fired = await waitFor(
      'the schedule to fire',
      async () => {
        const action = (await schedule.describe()).info.recentActions[0]?.action;
        return action?.type === 'startWorkflow' ? action.workflow.workflowId : undefined;
      },
      180_000,
    );
    const reevaluation = (await client.workflow.getHandle(fired).result()) as ReevaluateWorkflowResult;
    expect(reevaluation).toMatchObject({ status: 'no-production' });
    await schedule.delete();
  }, 3_000_000);
});
