import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { EvaluateWorkflowResult, ScoreName } from './evaluation';

export interface GatePolicy {
  /** Score the decision is made on. */
  metric: Exclude<ScoreName, 'latency_ms'>;
  /** The challenger passes when the lower bound of (challenger − champion) exceeds this margin. */
  margin: number;
  /** Two-sided confidence level of the paired bootstrap interval (0.95 → 2.5th percentile as lower bound). */
  confidence: number;
  /** Bootstrap resamples. */
  resamples: number;
  /** With no champion: the challenger passes when each named score's mean reaches its threshold. */
  thresholds: Partial<Record<ScoreName, number>>;
}

export const defaultGatePolicy: GatePolicy = {
  metric: 'f1',
  margin: 0,
  confidence: 0.95,
  resamples: 2000,
  thresholds: { f1: 0 },
};

export interface ApprovalPolicy {
  /** Wait for a person's `approve`/`reject` after the gate passes. */
  required: boolean;
  /** How long to wait, in seconds, before the default decision applies. */
  timeoutSeconds: number;
  defaultDecision: 'approve' | 'reject';
}

export interface LifecyclePipelineInput {
  /** The RAG application's name: registry collection, search attribute and business key. */
  app: string;
  /** Base chat model artifact: `wandb-artifact:///<entity>/<project>/<name>:<vN|alias>`. */
  baseModelRef: string;
  /** Training Dataset object ref (`weave:///…/object/<Name>:<digest>`). */
  trainingDatasetRef: string;
  /** Evaluation object ref (dataset + scorers). */
  evaluationRef: string;
  /** The RagModel to integrate into; default: the app's `production` RAG Model. */
  ragModelRef?: string;
  trainingConfig: 'demo-cpu' | 'gpu';
  /** Overrides of the training config's hyper-parameters (steps, learning_rate, lora_rank, …). */
  hyperParameters?: Record<string, number>;
  gate?: Partial<GatePolicy>;
  approval?: ApprovalPolicy;
  fresh?: boolean;
  batchSize?: number;
  maxParallelBatches?: number;
}

export type LifecycleStage =
  | 'starting'
  | 'validate'
  | 'fine-tune'
  | 'register'
  | 'integrate'
  | 'evaluate'
  | 'gate'
  | 'awaiting-approval'
  | 'publish'
  | 'done'
  | 'rejected'
  | 'failed'
  | 'cancelled';

export interface LifecycleRefs {
  /** What the run published into a W&B server (WANDB_ENTITY set on the workers): remote refs by what they are. */
  wandb?: Record<string, string>;
  chatModelArtifactRef?: string;
  chatModelRegistryRef?: string;
  chatModelRef?: string;
  championRagModelRef?: string;
  challengerRagModelRef?: string;
  evaluationResultRefs?: string[];
  publishedRegistryRef?: string;
}

export interface LifecycleProgress {
  stage: LifecycleStage;
  /** Step inside the stage (training step, completed evaluation batches). */
  step: number;
  totalSteps: number;
  percent: number;
  refs: LifecycleRefs;
  detail: string;
}

export interface GateDecision {
  decision: 'pass' | 'fail';
  metric: string;
  challengerMean: number;
  championMean: number | null;
  /** Mean paired difference and its bootstrap interval; null without a champion. */
  difference: number | null;
  ciLow: number | null;
  ciHigh: number | null;
  margin: number;
  reason: string;
}

export interface ApprovalRecord {
  decision: 'approve' | 'reject';
  approver: string;
  comment?: string;
  /** `default` when the approval timed out. */
  source: 'person' | 'default';
}

export interface LifecyclePipelineResult {
  /** `superseded`: the gate passed, but production moved since the gate compared against it (compare-and-set lost). */
  outcome: 'published' | 'gate-failed' | 'rejected' | 'superseded';
  refs: LifecycleRefs;
  training: FineTuneResult['summary'];
  evaluation: EvaluateWorkflowResult;
  gate: GateDecision;
  approval?: ApprovalRecord;
  publishedVersion?: string;
}

export const lifecycleProgressQuery = defineQuery<LifecycleProgress>('progress');
export const approveUpdate = defineUpdate<ApprovalRecord, [{ approver: string; comment?: string }]>('approve');
export const rejectUpdate = defineUpdate<ApprovalRecord, [{ approver: string; comment?: string }]>('reject');

export interface FineTuneInput {
  app: string;
  baseModelRef: string;
  trainingDatasetRef: string;
  trainingConfig: 'demo-cpu' | 'gpu';
  hyperParameters: Record<string, number>;
  /** Business key of the run: output directories and artifact idempotency derive from it. */
  runKey: string;
}

export interface FineTuneResult {
  /** Folder (on the shared model volume) holding the merged HF model and its ONNX export. */
  modelDirectory: string;
  summary: {
    steps: number;
    finalLoss: number;
    tokensPerSecond: number;
    trainSeconds: number;
    resumedFromStep: number;
    maxAbsLogitDifference: number;
  };
}

/** `weft-gpu` activities of the pipeline. */
export interface LifecycleGpuActivities {
  fineTune(input: FineTuneInput): Promise<FineTuneResult>;
}

/** `weft-registry` activities of the pipeline. */
export interface LifecycleRegistryActivities {
  registerModel(input: {
    app: string;
    runKey: string;
    workflowId: string;
    baseModelRef: string;
    trainingDatasetRef: string;
    fineTune: FineTuneResult;
  }): Promise<{ artifactRef: string; registryRef: string }>;
  /**
   * Publishes the gate's challenger as a version of the app's `RAG Models` collection and moves the app's
   * `production` alias to it, compare-and-set against the production version the gate saw.
   */
  promoteRagModel(
    input: PromoteRagModelInput,
  ): Promise<{ registryRef: string; version: string; wandb?: Record<string, string> }>;
}

/**
 * Publishing into a W&B server (lib/wandb-remote), on the registry worker. With W&B not configured they return
 * `{published: false}` at once, so the workflow calls them unconditionally (it cannot read configuration).
 */
export interface LifecycleWandbActivities {
  /** The fine-tune run, the chat-model artifact with its files, its link into `RAG Chat Models` (alias candidate). */
  publishChatModelToWandb(input: { app: string; workflowId: string; registryRef: string }): Promise<WandbPublishResult>;
  /** The evaluation's run and every call of it, each with `wandb-run-id`. */
  publishEvaluationToWandb(input: { workflowId: string; evaluationResultRefs: string[] }): Promise<WandbPublishResult>;
}

export interface WandbPublishResult {
  published: boolean;
  refs: Record<string, string>;
}

/** Runs started before W&B publishing existed replay without its two activities. */
export const wandbPublishPatch = 'wandb-publish';

export interface PromoteRagModelInput {
  app: string;
  ragModelRef: string;
  workflowId: string;
  /** Compare-and-set: the `production` target the gate compared against (null when there was none). */
  expectedProductionRef: string | null;
  gate: GateDecision;
}

/**
 * Activity names of earlier releases that histories still in flight may have scheduled. The registry worker serves
 * each under its old name too, and the workflow schedules the old name when it replays such a history (`patched`).
 */
export const legacyRegistryActivityNames = { promoteRagModel: 'publishRagModel' } as const;

/** The patch id that switched the workflow from `publishRagModel` to `promoteRagModel`. */
export const promoteRagModelPatch = 'promote-rag-model';

/** The registry activities under their pre-#16 names (see legacyRegistryActivityNames). */
export interface LegacyLifecycleRegistryActivities {
  publishRagModel(input: PromoteRagModelInput): Promise<{ registryRef: string; version: string }>;
}

/** `weft-pipeline`: checks a run's inputs before any side effect (reads only; names every bad input at once). */
export interface LifecycleValidationActivities {
  validateLifecycleInput(input: LifecyclePipelineInput): Promise<{ valid: true }>;
}

/** `weft-pipeline` activities of the pipeline. */
export interface LifecyclePipelineActivities {
  /** The app's current RagModel (given ref, else the `production` alias of the app's collection), or null on the first run. */
  resolveChampion(input: {
    app: string;
    ragModelRef?: string;
  }): Promise<{ ragModelRef: string | null; productionRef: string | null }>;
  integrate(input: {
    app: string;
    baseRagModelRef: string | null;
    chatModelArtifactRef: string;
  }): Promise<{ ragModelRef: string; chatModelRef: string }>;
  gateStatistics(input: {
    challengerResultRef: string;
    championResultRef: string | null;
    policy: GatePolicy;
  }): Promise<GateDecision>;
}

/** Workflow id from the business key, so starting the same run twice is rejected, not duplicated. */
export function lifecycleWorkflowId(app: string, baseModelRef: string, trainingDatasetDigest: string): string {
  const model = baseModelRef.replace(/^wandb-artifact:\/\/\//, '').replace(/[^A-Za-z0-9._:-]+/g, '_');
  return `lifecycle/${app}/${model}/${trainingDatasetDigest.slice(0, 16)}`;
}

/**
 * Inputs that change a lifecycle run's result, by the CLI flag that sets them. Batch size and parallelism
 * only change how fast it runs, so a run started with other values is still this request's run.
 */
const resultChangingInputs: { flag: string; value(input: LifecyclePipelineInput): unknown }[] = [
  { flag: '--app', value: (input) => input.app },
  { flag: '--base-model', value: (input) => input.baseModelRef },
  { flag: '--dataset', value: (input) => input.trainingDatasetRef },
  { flag: '--evaluation', value: (input) => input.evaluationRef },
  { flag: '--rag', value: (input) => input.ragModelRef ?? null },
  { flag: '--config', value: (input) => input.trainingConfig },
  { flag: '--hp', value: (input) => sortedEntries(input.hyperParameters ?? {}) },
  {
    flag: '--gate-metric/--gate-margin',
    value: (input) => {
      const gate = { ...defaultGatePolicy, ...input.gate };
      return [gate.metric, gate.margin, gate.confidence, gate.resamples, sortedEntries({ ...gate.thresholds })];
    },
  },
  { flag: '--require-approval', value: (input) => (input.approval?.required ? input.approval : null) },
  { flag: '--fresh', value: (input) => input.fresh ?? false },
];

function sortedEntries(record: Record<string, unknown>): [string, unknown][] {
  return Object.entries(record).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
}

/** The result-changing inputs on which two lifecycle requests differ: flag, existing value, requested value. */
export function differingLifecycleInputs(
  existing: LifecyclePipelineInput,
  requested: LifecyclePipelineInput,
): { flag: string; existing: string; requested: string }[] {
  return resultChangingInputs
    .map(({ flag, value }) => ({
      flag,
      existing: JSON.stringify(value(existing)),
      requested: JSON.stringify(value(requested)),
    }))
    .filter((entry) => entry.existing !== entry.requested);
}
