import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { lightActivity, registryActivity, trainingActivity, wandbPublishActivity } from './contracts/activity-options';
import { errorTypes } from './contracts/errors';
import type { EvaluateWorkflowResult } from './contracts/evaluation';
import {
  approveUpdate,
  defaultGatePolicy,
  lifecycleProgressQuery,
  rejectUpdate,
  type ApprovalRecord,
  type GateDecision,
  type GatePolicy,
  promoteRagModelPatch,
  type LegacyLifecycleRegistryActivities,
  type LifecycleGpuActivities,
  type LifecyclePipelineActivities,
  type LifecyclePipelineInput,
  type LifecyclePipelineResult,
  type LifecycleProgress,
  type LifecycleRegistryActivities,
  type LifecycleStage,
  type LifecycleValidationActivities,
  type LifecycleWandbActivities,
  wandbPublishPatch,
} from './contracts/lifecycle';
import {
  weftAppSearchAttribute,
  weftChatModelVersionSearchAttribute,
  weftGateDecisionSearchAttribute,
  weftScoreSearchAttribute,
  weftStageSearchAttribute,
} from './contracts/search-attributes';
import { taskQueues } from './contracts/task-queues';
import { evaluateWorkflow } from './evaluate';

const gpu = proxyActivities<LifecycleGpuActivities>({
  ...trainingActivity,
  taskQueue: taskQueues.gpu,
  summary: 'fine-tune the chat model (LoRA), merge and export to ONNX',
});
const registry = proxyActivities<LifecycleRegistryActivities & LegacyLifecycleRegistryActivities>({
  ...registryActivity,
  taskQueue: taskQueues.registry,
});
const wandb = proxyActivities<LifecycleWandbActivities>({
  ...wandbPublishActivity,
  taskQueue: taskQueues.registry,
  summary: 'publish into the configured W&B server (no-op when none is)',
});
const pipeline = proxyActivities<LifecyclePipelineActivities>({ ...lightActivity, taskQueue: taskQueues.pipeline });
const validation = proxyActivities<LifecycleValidationActivities>({
  ...lightActivity,
  taskQueue: taskQueues.pipeline,
  summary: 'check every input before anything is written',
});

const stagePercent: Record<LifecycleStage, number> = {
  starting: 0,
  validate: 1,
  'fine-tune': 5,
  register: 45,
  integrate: 50,
  evaluate: 55,
  gate: 90,
  'awaiting-approval': 92,
  publish: 95,
  done: 100,
  rejected: 100,
  failed: 100,
  cancelled: 100,
};

/**
 * The run's failure: the stage and the root cause's message (walking ActivityFailure / ChildWorkflowFailure),
 * with the stage in the details and the original failure as the cause, so the CLI can say what failed where.
 */
function stageFailure(stage: LifecycleStage, error: unknown): ApplicationFailure {
  let cause: unknown = error;
  while ((cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) && cause.cause)
    cause = cause.cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return ApplicationFailure.create({
    message: `${stage} failed: ${message}`,
    type: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined,
    nonRetryable: true,
    details: [{ stage }],
    cause: error instanceof Error ? error : undefined,
  });
}

/**
 * fine-tune (gpu) → register (registry) → integrate (pipeline) → evaluate (child workflow) → gate →
 * [approval] → publish (registry). Every input and result is a ref plus a small summary.
 */
export async function lifecyclePipelineWorkflow(input: LifecyclePipelineInput): Promise<LifecyclePipelineResult> {
  const { workflowId } = workflowInfo();
  const policy: GatePolicy = {
    ...defaultGatePolicy,
    ...input.gate,
    thresholds: { ...defaultGatePolicy.thresholds, ...input.gate?.thresholds },
  };
  const progress: LifecycleProgress = { stage: 'starting', step: 0, totalSteps: 0, percent: 0, refs: {}, detail: '' };
  let approval: ApprovalRecord | undefined;

  setHandler(lifecycleProgressQuery, () => progress);
  const decide =
    (decision: ApprovalRecord['decision']) =>
    (request: { approver: string; comment?: string }): ApprovalRecord => {
      approval = { decision, approver: request.approver, comment: request.comment, source: 'person' };
      return approval;
    };
  const validateApproval = (request: { approver: string }) => {
    if (progress.stage !== 'awaiting-approval' || approval !== undefined) {
      throw new Error(`This run is not waiting for approval (stage: ${progress.stage}).`);
    }
    if (!request?.approver?.trim()) throw new Error('An approval needs the approver’s name (--approver).');
  };
  setHandler(approveUpdate, decide('approve'), { validator: validateApproval });
  setHandler(rejectUpdate, decide('reject'), { validator: validateApproval });

  const enter = (stage: LifecycleStage, detail = '') => {
    progress.stage = stage;
    progress.percent = stagePercent[stage];
    progress.detail = detail;
    upsertSearchAttributes([{ key: weftStageSearchAttribute, value: stage }]);
  };
  const remember = () => upsertMemo({ refs: progress.refs });

  upsertSearchAttributes([{ key: weftAppSearchAttribute, value: input.app }]);
  try {
    // Runs started before this step existed replay without it.
    if (patched('validate-inputs-first')) {
      enter('validate');
      await validation.validateLifecycleInput(input);
    }
    enter('fine-tune', `config ${input.trainingConfig}`);
    const fineTune = await gpu.fineTune({
      app: input.app,
      baseModelRef: input.baseModelRef,
      trainingDatasetRef: input.trainingDatasetRef,
      trainingConfig: input.trainingConfig,
      hyperParameters: input.hyperParameters ?? {},
      runKey: workflowId,
    });

    enter('register');
    const registered = await registry.registerModel({
      app: input.app,
      runKey: workflowId,
      workflowId,
      baseModelRef: input.baseModelRef,
      trainingDatasetRef: input.trainingDatasetRef,
      fineTune,
    });
    progress.refs.chatModelArtifactRef = registered.artifactRef;
    progress.refs.chatModelRegistryRef = registered.registryRef;
    upsertSearchAttributes([{ key: weftChatModelVersionSearchAttribute, value: registered.registryRef }]);
    const publishToWandb = patched(wandbPublishPatch);
    if (publishToWandb) {
      const remote = await wandb.publishChatModelToWandb({
        app: input.app,
        workflowId,
        registryRef: registered.registryRef,
      });
      if (remote.published) progress.refs.wandb = { ...progress.refs.wandb, ...remote.refs };
    }
    remember();

    enter('integrate');
    const champion = await pipeline.resolveChampion({ app: input.app, ragModelRef: input.ragModelRef });
    const challenger = await pipeline.integrate({
      app: input.app,
      baseRagModelRef: champion.ragModelRef,
      chatModelArtifactRef: registered.artifactRef,
    });
    progress.refs.championRagModelRef = champion.ragModelRef ?? undefined;
    progress.refs.challengerRagModelRef = challenger.ragModelRef;
    progress.refs.chatModelRef = challenger.chatModelRef;
    remember();

    enter('evaluate');
    // The champion (when there is one) is evaluated on the same dataset version in the same evaluation.
    const ragModelRefs = [challenger.ragModelRef, ...(champion.ragModelRef ? [champion.ragModelRef] : [])];
    const evaluation: EvaluateWorkflowResult = await executeChild(evaluateWorkflow, {
      workflowId: `${workflowId}/evaluate`,
      taskQueue: taskQueues.pipeline,
      args: [
        {
          evaluationRef: input.evaluationRef,
          ragModelRefs,
          fresh: input.fresh,
          batchSize: input.batchSize,
          maxParallelBatches: input.maxParallelBatches,
        },
      ],
    });
    progress.refs.evaluationResultRefs = evaluation.results.map((result) => result.evaluationResultRef);
    if (publishToWandb) {
      const remote = await wandb.publishEvaluationToWandb({
        workflowId,
        evaluationResultRefs: progress.refs.evaluationResultRefs,
      });
      if (remote.published) progress.refs.wandb = { ...progress.refs.wandb, ...remote.refs };
    }
    remember();

    enter('gate');
    const gate: GateDecision = await pipeline.gateStatistics({
      challengerResultRef: evaluation.results[0].evaluationResultRef,
      championResultRef: evaluation.results[1]?.evaluationResultRef ?? null,
      policy,
    });
    upsertSearchAttributes([
      { key: weftGateDecisionSearchAttribute, value: gate.decision },
      { key: weftScoreSearchAttribute, value: gate.challengerMean },
    ]);
    const base = { refs: progress.refs, training: fineTune.summary, evaluation, gate };
    if (gate.decision === 'fail') {
      enter('done', gate.reason);
      return { ...base, outcome: 'gate-failed' };
    }

    if (input.approval?.required) {
      enter('awaiting-approval', `waiting up to ${input.approval.timeoutSeconds}s for approve/reject`);
      const decided = await condition(() => approval !== undefined, input.approval.timeoutSeconds * 1000);
      if (!decided) {
        approval = { decision: input.approval.defaultDecision, approver: 'timeout', source: 'default' };
      }
      upsertMemo({ approval });
      if (approval!.decision === 'reject') {
        enter('rejected', `rejected by ${approval!.approver}`);
        return { ...base, outcome: 'rejected', approval };
      }
    }

    enter('publish');
    let published: { registryRef: string; version: string; wandb?: Record<string, string> };
    try {
      const promotion = {
        app: input.app,
        ragModelRef: challenger.ragModelRef,
        workflowId,
        expectedProductionRef: champion.productionRef,
        gate,
      };
      // Histories recorded before the rename scheduled `publishRagModel`; they replay on that name.
      published = patched(promoteRagModelPatch)
        ? await registry.promoteRagModel(promotion)
        : await registry.publishRagModel(promotion);
    } catch (error) {
      // Another run published first: this one ends cleanly, saying so, instead of overwriting a newer champion.
      if (
        error instanceof ActivityFailure &&
        error.cause instanceof ApplicationFailure &&
        error.cause.type === errorTypes.aliasConflict
      ) {
        enter('done', error.cause.message);
        return { ...base, outcome: 'superseded', approval };
      }
      throw error;
    }
    progress.refs.publishedRegistryRef = published.registryRef;
    if (published.wandb) progress.refs.wandb = { ...progress.refs.wandb, ...published.wandb };
    remember();
    enter('done', `published ${published.registryRef}`);
    return { ...base, outcome: 'published', approval, publishedVersion: published.version };
  } catch (error) {
    if (isCancellation(error)) {
      // Record the end state even though the workflow is being cancelled.
      await CancellationScope.nonCancellable(async () => enter('cancelled'));
      throw error;
    }
    const stage = progress.stage;
    enter('failed', error instanceof Error ? error.message : String(error));
    throw stageFailure(stage, error);
  }
}
