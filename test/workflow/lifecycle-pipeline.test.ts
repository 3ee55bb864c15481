import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type {
  EvaluationGpuActivities,
  EvaluationPipelineActivities,
  EvaluationPlan,
} from '../../workflows/contracts/evaluation';
import { errorTypes } from '../../workflows/contracts/errors';
import {
  approveUpdate,
  lifecycleProgressQuery,
  rejectUpdate,
  type GateDecision,
  type LifecycleGpuActivities,
  type LifecyclePipelineActivities,
  type LifecyclePipelineInput,
  type LifecycleRegistryActivities,
  type LifecycleValidationActivities,
} from '../../workflows/contracts/lifecycle';
import { taskQueues } from '../../workflows/contracts/task-queues';
import { lifecyclePipelineWorkflow } from '../../workflows';
import {
  weftAppSearchAttribute,
  weftChatModelVersionSearchAttribute,
  weftGateDecisionSearchAttribute,
  weftRegressionSearchAttribute,
  weftScoreSearchAttribute,
  weftStageSearchAttribute,
} from '../../workflows/contracts/search-attributes';
import { temporalCliForTests } from '../support/temporal';
import { runWeft } from '../support/cli';
import { describeRunFailure, RunFailedError } from '../../client/run-failure';
import { DifferentRunInputsError, startOrJoinLifecycle } from '../../client/commands/pipeline-commands';
import { createValidationActivities } from '../../activities/validation';
import { createWandbPublishActivities } from '../../activities/wandb-publish';
import { storeWithRunInputs } from '../support/run-inputs';
import { closeRunsOfClosedWorkflows } from '../../lib/temporal/run-reaper';

/** What the mocked activities saw, so tests can assert what the pipeline did (published? with which CAS target?). */
interface Recorder {
  published: { ragModelRef: string; expectedProductionRef: string | null }[];
  predictedBatches: string[];
  fineTuneCancelled: boolean;
}

interface Scenario {
  production: string | null;
  gate: (championResultRef: string | null) => GateDecision;
  fineTune?: LifecycleGpuActivities['fineTune'];
  publishConflict?: boolean;
  rows?: number;
  validate?: LifecycleValidationActivities['validateLifecycleInput'];
}

function gateResult(decision: 'pass' | 'fail', championMean: number | null): GateDecision {
  return {
    decision,
    metric: 'f1',
    challengerMean: 0.6,
    championMean,
    difference: championMean === null ? null : 0.6 - championMean,
    ciLow: championMean === null ? null : 0.05,
    ciHigh: championMean === null ? null : 0.2,
    margin: 0,
    reason: decision === 'pass' ? 'challenger better' : 'challenger not better',
  };
}

function mockActivities(scenario: Scenario, recorder: Recorder) {
  const gpuActivities: LifecycleGpuActivities & EvaluationGpuActivities = {
    fineTune:
      scenario.fineTune ??
      (async () => ({
        modelDirectory: '/models/run',
        summary: {
          steps: 10,
          finalLoss: 1.2,
          tokensPerSecond: 100,
          trainSeconds: 3,
          resumedFromStep: 0,
          maxAbsLogitDifference: 1e-5,
        },
      })),
    async predictBatch({ modelIndex, batchIndex }) {
      recorder.predictedBatches.push(`${modelIndex}:${batchIndex}`);
      return { modelIndex, batchIndex, predictedRows: 4, cachedRows: 0 };
    },
  };
  const registryActivities: LifecycleRegistryActivities = {
    async registerModel({ app }) {
      return {
        artifactRef: `wandb-artifact:///weft/rag-demo/${app}-chat:v1`,
        registryRef: `wandb-artifact:///weft/wandb-registry-RAG Chat Models/${app}:v1`,
      };
    },
    async promoteRagModel({ ragModelRef, expectedProductionRef }) {
      if (scenario.publishConflict) {
        throw ApplicationFailure.nonRetryable('production moved to v4 after this run’s gate', errorTypes.aliasConflict);
      }
      recorder.published.push({ ragModelRef, expectedProductionRef });
      return { registryRef: 'wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model:v3', version: 'v3' };
    },
  };
  const pipelineActivities: LifecyclePipelineActivities & EvaluationPipelineActivities & LifecycleValidationActivities =
    {
      validateLifecycleInput: scenario.validate ?? (async () => ({ valid: true })),
      async resolveChampion({ ragModelRef }) {
        const resolved = ragModelRef ?? scenario.production;
        return { ragModelRef: resolved, productionRef: scenario.production };
      },
      async integrate() {
        return {
          ragModelRef: 'weave:///weft/rag-demo/object/RagModel:challenger',
          chatModelRef: 'weave:///weft/rag-demo/object/ChatModel:new',
        };
      },
      async gateStatistics({ championResultRef }) {
        return scenario.gate(championResultRef);
      },
      async planEvaluation({ ragModelRefs, batchSize, evaluationRunId }): Promise<EvaluationPlan> {
        const rowCount = scenario.rows ?? 8;
        if (rowCount === 0)
          throw ApplicationFailure.nonRetryable('The evaluation dataset has no rows.', errorTypes.invalidInput);
        return {
          evaluationRunId,
          wandbRunId: 'run-1',
          evaluationRef: 'weave:///weft/rag-demo/object/Evaluation:456',
          datasetRef: 'weave:///weft/rag-demo/object/qa-eval:abc',
          rowCount,
          scorers: ['exact_match', 'f1'],
          models: ragModelRefs.map((ragModelRef, index) => ({
            ragModelRef,
            label: index === 0 ? 'challenger' : 'champion',
          })),
          batchSize,
          batchCount: Math.ceil(rowCount / batchSize),
        };
      },
      async scoreBatch({ modelIndex, batchIndex }) {
        return { modelIndex, batchIndex, scoredRows: 4 };
      },
      async summarizeEvaluation({ plan }) {
        return plan.models.map((model, index) => ({
          ragModelRef: model.ragModelRef,
          label: model.label,
          evaluationResultRef: `weave:///weft/rag-demo/object/EvaluationResult:${index}`,
          summary: { f1: { mean: index === 0 ? 0.6 : 0.45, ciLow: 0.5, ciHigh: 0.7, count: plan.rowCount } },
        }));
      },
    };
  return { gpuActivities, registryActivities, pipelineActivities };
}

/** The validator's message, which the client carries as the update failure's cause. */
async function updateRefusal(update: Promise<unknown>): Promise<string> {
  const error = await update.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  if (!(error instanceof WorkflowUpdateFailedError))
    throw new Error(`expected the update to be refused, got ${String(error)}`);
  return error.cause?.message ?? error.message;
}

const baseInput: LifecyclePipelineInput = {
  app: 'climate-rag',
  baseModelRef: 'wandb-artifact:///weft/rag-demo/base-chat:v0',
  trainingDatasetRef: 'weave:///weft/rag-demo/object/qa-train:123',
  evaluationRef: 'weave:///weft/rag-demo/object/Evaluation:456',
  trainingConfig: 'demo-cpu',
  batchSize: 4,
};

describe('lifecyclePipelineWorkflow (mocked activities, real dev server)', () => {
  let environment: TestWorkflowEnvironment;
  let workflowBundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    // The dev server, not the time-skipping test server: the latter rejects custom search attributes
    // (BadSearchAttributes), and the pipeline sets them on every stage.
    environment = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: temporalCliForTests() },
        searchAttributes: [
          weftStageSearchAttribute,
          weftAppSearchAttribute,
          weftChatModelVersionSearchAttribute,
          weftGateDecisionSearchAttribute,
          weftScoreSearchAttribute,
          weftRegressionSearchAttribute,
        ],
      },
    });
    workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  });

  afterAll(async () => {
    await environment?.teardown();
  });

  async function withWorkers<T>(scenario: Scenario, body: (recorder: Recorder) => Promise<T>): Promise<T> {
    const recorder: Recorder = { published: [], predictedBatches: [], fineTuneCancelled: false };
    const { gpuActivities, registryActivities, pipelineActivities } = mockActivities(scenario, recorder);
    const connection = environment.nativeConnection;
    const [pipelineWorker, gpuWorker, registryWorker] = await Promise.all([
      Worker.create({ connection, taskQueue: taskQueues.pipeline, workflowBundle, activities: pipelineActivities }),
      // As in workers/gpu.ts: heartbeats (and so cancellations) reach the server within seconds.
      Worker.create({
        connection,
        taskQueue: taskQueues.gpu,
        activities: gpuActivities,
        maxHeartbeatThrottleInterval: '1 second',
      }),
      Worker.create({
        connection,
        taskQueue: taskQueues.registry,
        // W&B publishing is not configured here: the real activities answer `published: false` without a publisher.
        activities: { ...registryActivities, ...createWandbPublishActivities({ publisher: undefined }) },
      }),
    ]);
    return pipelineWorker.runUntil(gpuWorker.runUntil(registryWorker.runUntil(body(recorder))));
  }

  const start = (input: LifecyclePipelineInput = baseInput) =>
    environment.client.workflow.start(lifecyclePipelineWorkflow, {
      taskQueue: taskQueues.pipeline,
      workflowId: `lifecycle-test-${randomUUID()}`,
      args: [input],
    });

  it('gate pass with a champion: evaluates both on the same plan and publishes with compare-and-set on production', async () => {
    const production = 'weave:///weft/rag-demo/object/RagModel:champion';
    await withWorkers({ production, gate: () => gateResult('pass', 0.45) }, async (recorder) => {
      const handle = await start();
      const result = await handle.result();
      expect(result.outcome).toBe('published');
      expect(result.publishedVersion).toBe('v3');
      expect(result.evaluation.results.map((entry) => entry.ragModelRef)).toEqual([
        'weave:///weft/rag-demo/object/RagModel:challenger',
        production,
      ]);
      expect(recorder.published).toEqual([
        { ragModelRef: 'weave:///weft/rag-demo/object/RagModel:challenger', expectedProductionRef: production },
      ]);
      // 8 rows in batches of 4, for 2 models: every batch exactly once.
      expect(recorder.predictedBatches.sort()).toEqual(['0:0', '0:1', '1:0', '1:1']);
      const progress = await handle.query(lifecycleProgressQuery);
      expect(progress).toMatchObject({ stage: 'done', percent: 100 });
      expect(progress.refs.publishedRegistryRef).toBe('wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model:v3');
    });
  });

  it('production moved after the gate: ends superseded, saying why, instead of failing or overwriting', async () => {
    await withWorkers(
      { production: null, gate: () => gateResult('pass', null), publishConflict: true },
      async (recorder) => {
        const handle = await start();
        const result = await handle.result();
        expect(result.outcome).toBe('superseded');
        expect((await handle.query(lifecycleProgressQuery)).detail).toMatch(/production moved to v4/);
        expect(recorder.published).toEqual([]);
      },
    );
  });

  it('gate fail: ends with gate-failed and publishes nothing', async () => {
    await withWorkers(
      { production: 'weave:///weft/rag-demo/object/RagModel:champion', gate: () => gateResult('fail', 0.7) },
      async (recorder) => {
        const result = await (await start()).result();
        expect(result.outcome).toBe('gate-failed');
        expect(result.gate.reason).toBe('challenger not better');
        expect(recorder.published).toEqual([]);
      },
    );
  });

  it('no champion (first run): evaluates the challenger alone and publishes against an empty production alias', async () => {
    await withWorkers(
      { production: null, gate: (champion) => gateResult(champion ? 'fail' : 'pass', null) },
      async (recorder) => {
        const result = await (await start()).result();
        expect(result.outcome).toBe('published');
        expect(result.evaluation.results).toHaveLength(1);
        expect(recorder.published[0].expectedProductionRef).toBeNull();
      },
    );
  });

  describe('approval', () => {
    const approvalInput = (defaultDecision: 'approve' | 'reject', timeoutSeconds = 600): LifecyclePipelineInput => ({
      ...baseInput,
      approval: { required: true, timeoutSeconds, defaultDecision },
    });
    const scenario: Scenario = { production: null, gate: () => gateResult('pass', null) };

    async function waitForApprovalStage(handle: Awaited<ReturnType<typeof start>>) {
      for (;;) {
        const progress = await handle.query(lifecycleProgressQuery);
        if (progress.stage === 'awaiting-approval') return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }

    it('approve: publishes and records the approver', async () => {
      await withWorkers(scenario, async (recorder) => {
        const handle = await start(approvalInput('reject'));
        await waitForApprovalStage(handle);
        const record = await handle.executeUpdate(approveUpdate, {
          args: [{ approver: 'ana', comment: 'looks good' }],
        });
        expect(record).toMatchObject({ decision: 'approve', approver: 'ana', source: 'person' });
        const result = await handle.result();
        expect(result.outcome).toBe('published');
        expect(result.approval).toMatchObject({ approver: 'ana', comment: 'looks good' });
        expect(recorder.published).toHaveLength(1);
      });
    });

    it('reject: ends rejected without publishing', async () => {
      await withWorkers(scenario, async (recorder) => {
        const handle = await start(approvalInput('approve'));
        await waitForApprovalStage(handle);
        await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bo' }] });
        const result = await handle.result();
        expect(result.outcome).toBe('rejected');
        expect(result.approval).toMatchObject({ decision: 'reject', approver: 'bo' });
        expect(recorder.published).toEqual([]);
      });
    });

    it('timeout: the default decision applies when nobody decides in time', async () => {
      await withWorkers(scenario, async (recorder) => {
        // Two seconds of real time on the dev server.
        const handle = await start(approvalInput('reject', 2));
        const result = await handle.result();
        expect(result.outcome).toBe('rejected');
        expect(result.approval).toEqual({ decision: 'reject', approver: 'timeout', source: 'default' });
        expect(recorder.published).toEqual([]);
      });
    });

    it('an approval while not waiting, or without an approver, is refused with a message', async () => {
      await withWorkers({ ...scenario, gate: () => gateResult('fail', null) }, async () => {
        const finished = await start(approvalInput('approve'));
        await finished.result();
        await expect(finished.executeUpdate(approveUpdate, { args: [{ approver: 'ana' }] })).rejects.toThrow(
          /already completed/,
        );
      });
      let releaseFineTune: () => void = () => undefined;
      const fineTuneReleased = new Promise<void>((resolve) => (releaseFineTune = resolve));
      const blockedScenario: Scenario = {
        ...scenario,
        fineTune: async () => {
          await fineTuneReleased;
          return {
            modelDirectory: '/models/run',
            summary: {
              steps: 1,
              finalLoss: 1,
              tokensPerSecond: 1,
              trainSeconds: 1,
              resumedFromStep: 0,
              maxAbsLogitDifference: 0,
            },
          };
        },
      };
      await withWorkers(blockedScenario, async () => {
        const handle = await start(approvalInput('reject'));
        for (;;) {
          if ((await handle.query(lifecycleProgressQuery)).stage === 'fine-tune') break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'ana' }] }))).toBe(
          'This run is not waiting for approval (stage: fine-tune).',
        );
        releaseFineTune();
        await waitForApprovalStage(handle);
        expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ approver: '  ' }] }))).toMatch(
          /needs the approver/,
        );
        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'ana' }] });
        const result = await handle.result();
        expect(result.outcome).toBe('published');
        expect(result.approval?.approver).toBe('ana');
      });
    });
  });

  it('cancellation reaches the running fine-tune, and the run ends cancelled', async () => {
    const recorderBox: { recorder?: Recorder } = {};
    await withWorkers(
      {
        production: null,
        gate: () => gateResult('pass', null),
        fineTune: async () => {
          // Heartbeat until the cancellation arrives, like the real trainer activity.
          for (;;) {
            Context.current().heartbeat({ step: 1 });
            try {
              await Context.current().sleep(200);
            } catch (error) {
              recorderBox.recorder!.fineTuneCancelled = true;
              throw error;
            }
          }
        },
      },
      async (recorder) => {
        recorderBox.recorder = recorder;
        const handle = await start();
        for (;;) {
          const progress = await handle.query(lifecycleProgressQuery);
          if (progress.stage === 'fine-tune') break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await handle.cancel();
        await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
        expect((await handle.describe()).status.name).toBe('CANCELLED');
        expect((await handle.query(lifecycleProgressQuery)).stage).toBe('cancelled');
        for (let attempt = 0; attempt < 50 && !recorder.fineTuneCancelled; attempt += 1) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(recorder.fineTuneCancelled).toBe(true);
      },
    );
  });

  it('non-retryable bad input ends the workflow with the input error’s own message', async () => {
    await withWorkers(
      {
        production: null,
        gate: () => gateResult('pass', null),
        fineTune: async () => {
          throw ApplicationFailure.nonRetryable(
            'Training dataset qa-train has 0 rows: add at least one row with question, answer and context.',
            errorTypes.invalidInput,
          );
        },
      },
      async (recorder) => {
        const handle = await start();
        const failure = await handle.result().catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(WorkflowFailedError);
        const cause = (failure as WorkflowFailedError).cause as ApplicationFailure;
        expect(cause.message).toBe(
          'fine-tune failed: Training dataset qa-train has 0 rows: add at least one row with question, answer and context.',
        );
        expect(cause.type).toBe(errorTypes.invalidInput);
        expect(recorder.published).toEqual([]);
      },
    );
  });

  describe('why a run failed (finding 2)', () => {
    const failingScenario = (fineTune: LifecycleGpuActivities['fineTune']): Scenario => ({
      production: null,
      gate: () => gateResult('pass', null),
      fineTune,
    });

    it('the root cause and its stage survive the cause chain, and `weft status --json` carries them', async () => {
      await withWorkers(
        failingScenario(async () => {
          throw ApplicationFailure.nonRetryable(
            'invalid hyper-parameter: max-steps must be >= 1',
            errorTypes.invalidInput,
          );
        }),
        async () => {
          const handle = await start();
          const failure = await handle.result().catch((error: unknown) => error);
          expect(describeRunFailure(new RunFailedError(handle.workflowId, failure))).toMatchObject({
            stage: 'fine-tune',
            message: 'invalid hyper-parameter: max-steps must be >= 1',
            type: errorTypes.invalidInput,
            workflowId: handle.workflowId,
          });
          const status = await runWeft(['status', handle.workflowId, '--json'], {
            TEMPORAL_ADDRESS: environment.address,
          });
          expect(status.code).toBe(0);
          expect(JSON.parse(status.stdout)).toMatchObject({
            status: 'FAILED',
            failure: { stage: 'fine-tune', message: 'invalid hyper-parameter: max-steps must be >= 1' },
          });
          const human = await runWeft(['status', handle.workflowId], { TEMPORAL_ADDRESS: environment.address });
          expect(human.stdout).toContain('fine-tune failed: invalid hyper-parameter: max-steps must be >= 1');
        },
      );
    });

    it('a failure inside the evaluate child workflow names the evaluate stage and the activity’s message', async () => {
      await withWorkers({ production: null, gate: () => gateResult('pass', null), rows: 0 }, async () => {
        const handle = await start();
        const failure = await handle.result().catch((error: unknown) => error);
        const described = describeRunFailure(new RunFailedError(handle.workflowId, failure));
        expect(described?.stage).toBe('evaluate');
        expect(described?.message).toBe('The evaluation dataset has no rows.');
      });
    });

    it('a failed command with --json ends with one JSON object saying why', async () => {
      const result = await runWeft(['status', 'no-such-run', '--json'], { TEMPORAL_ADDRESS: environment.address });
      expect(result.code).toBe(1);
      expect(JSON.parse(result.stdout)).toEqual({
        ok: false,
        error: { message: expect.stringContaining("No workflow with id 'no-such-run'") },
      });
    });
  });

  it('same business key, different inputs: refused naming each differing input; same inputs join the existing run (finding 6)', async () => {
    await withWorkers({ production: null, gate: () => gateResult('pass', null) }, async () => {
      const workflowId = `lifecycle-key-${randomUUID()}`;
      const first = await startOrJoinLifecycle(environment.client, workflowId, baseInput);
      expect(first.run).toBe('new');
      const firstResult = await first.handle.result();
      const firstRunId = (await first.handle.describe()).runId;

      const different: LifecyclePipelineInput = {
        ...baseInput,
        evaluationRef: 'weave:///weft/rag-demo/object/Evaluation:other',
        hyperParameters: { max_steps: 2 },
      };
      const refusal = await startOrJoinLifecycle(environment.client, workflowId, different).catch(
        (error: unknown) => error,
      );
      expect(refusal).toBeInstanceOf(DifferentRunInputsError);
      expect((refusal as DifferentRunInputsError).differences.map((entry) => entry.flag)).toEqual([
        '--evaluation',
        '--hp',
      ]);
      expect((refusal as Error).message).toMatch(/Start a new run with --id/);
      // Nothing was started for the refused request: the key still names the first run.
      expect((await environment.client.workflow.getHandle(workflowId).describe()).runId).toBe(firstRunId);

      // Batch size does not change the result: the same request joins the completed run and gets its result.
      const again = await startOrJoinLifecycle(environment.client, workflowId, { ...baseInput, batchSize: 2 });
      expect(again.run).toBe('existing');
      expect(await again.handle.result()).toEqual(firstResult);
    });
  });

  it('bad inputs fail the run at its first step, naming each one, before anything is trained or written (finding 3)', async () => {
    const { store, input, counts } = await storeWithRunInputs();
    try {
      const fineTuned: string[] = [];
      const before = await counts();
      await withWorkers(
        {
          production: null,
          gate: () => gateResult('pass', null),
          validate: createValidationActivities({ store }).validateLifecycleInput,
          fineTune: async ({ runKey }) => {
            fineTuned.push(runKey);
            throw new Error('fine-tune must not start');
          },
        },
        async (recorder) => {
          const handle = await start({
            ...input,
            app: 'a b/c',
            evaluationRef: 'weave:///weft/rag-demo/object/Evaluation:0000',
            hyperParameters: { max_steps: 1e15 },
          });
          const failure = describeRunFailure(
            new RunFailedError(handle.workflowId, await handle.result().catch((error: unknown) => error)),
          );
          expect(failure?.stage).toBe('validate');
          expect(failure?.type).toBe(errorTypes.invalidInput);
          expect(failure?.message).toMatch(/^3 invalid inputs; nothing was written:/);
          expect(failure?.message).toMatch(/--app: /);
          expect(failure?.message).toMatch(/--evaluation .*Evaluation:0000/);
          expect(failure?.message).toMatch(/--hp: hyper-parameter max_steps/);
          expect(fineTuned).toEqual([]);
          expect(recorder.published).toEqual([]);
          expect(await counts()).toEqual(before);
        },
      );
    } finally {
      await store.close();
    }
  });

  it('a terminated or failed workflow’s lineage run is closed by the reaper; a running one’s is left open (finding 3)', async () => {
    const { store } = await storeWithRunInputs();
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    try {
      await withWorkers(
        {
          production: null,
          gate: () => gateResult('pass', null),
          // Runs whose id starts with `failing-` fail at once; the others train until the test ends.
          fineTune: async ({ runKey }) => {
            if (!runKey.startsWith('failing-')) await released;
            throw ApplicationFailure.nonRetryable('the trainer ran out of memory', errorTypes.invalidInput);
          },
        },
        async () => {
          const startAs = (workflowId: string) =>
            environment.client.workflow.start(lifecyclePipelineWorkflow, {
              taskQueue: taskQueues.pipeline,
              workflowId,
              args: [baseInput],
            });
          const [terminated, failed, running] = await Promise.all([
            startAs(`terminated-${randomUUID()}`),
            startAs(`failing-${randomUUID()}`),
            startAs(`running-${randomUUID()}`),
          ]);
          const runFor = (workflowId: string, jobType: string) => store.runs.create({ jobType, workflowId });
          const runs = {
            terminated: await runFor(terminated.workflowId, 'fine-tune'),
            failed: await runFor(failed.workflowId, 'evaluation'),
            running: await runFor(running.workflowId, 'fine-tune'),
          };
          await terminated.terminate('operator stopped it');
          await failed.result().catch(() => undefined);

          const reaped = await closeRunsOfClosedWorkflows(store, environment.client);
          expect(reaped.map((entry) => `${entry.runId} ${entry.workflowStatus} ${entry.state}`).sort()).toEqual(
            [`${runs.terminated.id} TERMINATED killed`, `${runs.failed.id} FAILED failed`].sort(),
          );
          expect((await store.runs.get(runs.terminated.id)).state).toBe('killed');
          expect((await store.runs.get(runs.failed.id)).summary).toMatchObject({ workflow_status: 'failed' });
          expect((await store.runs.get(runs.running.id)).state).toBe('running');
          // A second round changes nothing.
          expect(await closeRunsOfClosedWorkflows(store, environment.client)).toEqual([]);
          await running.terminate('test over');
          release();
        },
      );
    } finally {
      release();
      await store.close();
    }
  });
});
