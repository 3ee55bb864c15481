import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import {
  createSmokeGpuActivities,
  createSmokePipelineActivities,
  createSmokeRegistryActivities,
} from '../../activities/smoke';
import { smokeProgressQuery } from '../../workflows/contracts/smoke';
import { taskQueues } from '../../workflows/contracts/task-queues';
import { smokePipelineWorkflow } from '../../workflows';
import { temporalCliForTests } from '../support/temporal';

describe('smokePipelineWorkflow on the real dev-server binary', () => {
  let environment: TestWorkflowEnvironment;
  let workflowBundle: WorkflowBundleWithSourceMap;
  let home: string;

  beforeAll(async () => {
    environment = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: temporalCliForTests() } },
    });
    workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  });

  afterAll(async () => {
    await environment?.teardown();
  });

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-smoke-'));
  });

  /** Three in-process workers, one per task queue, like the three worker kinds. */
  async function runWithWorkers<T>(body: () => Promise<T>): Promise<T> {
    const { nativeConnection: connection } = environment;
    const workers = await Promise.all([
      Worker.create({
        connection,
        taskQueue: taskQueues.pipeline,
        workflowBundle,
        activities: createSmokePipelineActivities({ workerName: 'pipeline-worker' }),
      }),
      Worker.create({
        connection,
        taskQueue: taskQueues.gpu,
        activities: createSmokeGpuActivities({ workerName: 'gpu-worker' }),
      }),
      Worker.create({
        connection,
        taskQueue: taskQueues.registry,
        activities: createSmokeRegistryActivities({ workerName: 'registry-worker', home }),
      }),
    ]);
    const [pipeline, gpu, registry] = workers;
    return pipeline.runUntil(gpu.runUntil(registry.runUntil(body())));
  }

  it('runs one step on each task queue, in order, and reports it through the progress query', async () => {
    const { result, progress } = await runWithWorkers(async () => {
      const handle = await environment.client.workflow.start(smokePipelineWorkflow, {
        taskQueue: taskQueues.pipeline,
        workflowId: 'smoke-order',
        args: [{ message: 'hello' }],
      });
      const result = await handle.result();
      return { result, progress: await handle.query(smokeProgressQuery) };
    });
    expect(result.steps.map((step) => [step.step, step.taskQueue, step.worker])).toEqual([
      ['digest', 'weft-pipeline', 'pipeline-worker'],
      ['embed', 'weft-gpu', 'gpu-worker'],
      ['record', 'weft-registry', 'registry-worker'],
    ]);
    // sha256("hello"), the value any sha256 tool prints for the same bytes.
    expect(result.digest).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(progress).toMatchObject({ stage: 'done', completedSteps: 3, totalSteps: 3 });
  });

  it('records each run once in WEFT_HOME, even when the registry step runs again', async () => {
    const registry = createSmokeRegistryActivities({ workerName: 'registry-worker', home });
    const input = { workflowId: 'smoke-twice', digest: 'abc', vectorNorm: 1 };
    const first = await registry.recordSmokeRun(input);
    const second = await registry.recordSmokeRun(input);
    const lines = fs.readFileSync(first.recordPath, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject(input);
    expect(second.summary).toMatch(/already recorded/);
  });
});
