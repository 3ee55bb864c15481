import { defineQuery } from '@temporalio/workflow';

/** Score names as they appear in summaries, `--json` output and `weft evals compare`. */
export const scoreNames = ['exact_match', 'f1', 'hit@5', 'mrr', 'groundedness', 'latency_ms'] as const;
export type ScoreName = (typeof scoreNames)[number];

/** Mean and 95% confidence interval of one score over the rows of an evaluation. */
export interface ScoreSummary {
  mean: number;
  ciLow: number;
  ciHigh: number;
  count: number;
}

export type EvaluationSummary = Partial<Record<ScoreName, ScoreSummary>>;

export interface EvaluateWorkflowInput {
  /** `weave:///…/object/Evaluation:<digest>`: dataset ref + scorer names/versions. */
  evaluationRef: string;
  /** RagModel refs evaluated on the same dataset version in this one evaluation (challenger first, then champion). */
  ragModelRefs: string[];
  /** Bypass the per-row result cache (sampled predictions are never cached anyway). */
  fresh?: boolean;
  /** Rows per predict activity. */
  batchSize?: number;
  /** Predict activities in flight at once; match the gpu pool's total slots. */
  maxParallelBatches?: number;
  /** Set by the workflow itself when it continues as new; callers leave it out. */
  carried?: EvaluationCarriedState;
}

/** What a continued-as-new evaluation keeps: where it was, never the per-row data (that lives in the lineage store). */
export interface EvaluationCarriedState {
  plan: EvaluationPlan;
  nextBatchIndex: number;
  predictedRows: number;
  cachedRows: number;
}

export interface EvaluationPlan {
  /** Stable id of this evaluation run: per-row calls carry it, so a crashed run resumes without predicting a batch twice. */
  evaluationRunId: string;
  /** The W&B-style run the evaluation's calls are attributed to (`wandb-run-id` attribute). */
  wandbRunId: string;
  evaluationRef: string;
  datasetRef: string;
  rowCount: number;
  scorers: string[];
  /** One entry per RagModel, in input order. */
  models: { ragModelRef: string; label: string }[];
  batchSize: number;
  batchCount: number;
}

export interface PredictBatchInput {
  plan: EvaluationPlan;
  modelIndex: number;
  batchIndex: number;
  fresh: boolean;
}

export interface PredictBatchResult {
  modelIndex: number;
  batchIndex: number;
  /** Rows answered by the model in this attempt. */
  predictedRows: number;
  /** Rows served from the result cache or from an earlier attempt of this batch. */
  cachedRows: number;
}

export interface ScoreBatchResult {
  modelIndex: number;
  batchIndex: number;
  scoredRows: number;
}

export interface EvaluationModelResult {
  ragModelRef: string;
  label: string;
  /** `weave:///…/object/EvaluationResult:<digest>`: per-row calls and the summary. */
  evaluationResultRef: string;
  summary: EvaluationSummary;
}

export interface EvaluateWorkflowResult {
  evaluationRunId: string;
  datasetRef: string;
  rowCount: number;
  predictedRows: number;
  cachedRows: number;
  results: EvaluationModelResult[];
}

export interface EvaluationProgress {
  stage: 'planning' | 'predicting' | 'summarizing' | 'done';
  completedBatches: number;
  totalBatches: number;
  predictedRows: number;
  cachedRows: number;
}

export const evaluationProgressQuery = defineQuery<EvaluationProgress>('progress');

/** Activities of the evaluation on `weft-pipeline`. */
export interface EvaluationPipelineActivities {
  planEvaluation(input: {
    evaluationRef: string;
    ragModelRefs: string[];
    batchSize: number;
    evaluationRunId: string;
  }): Promise<EvaluationPlan>;
  /**
   * Scores the stored predictions of one batch. Scoring stays an activity apart from predictBatch (decided in #16):
   * it keeps gpu slots for inference only, and a scorer fix re-scores stored predictions without predicting again.
   * The price, measured by bench/evaluation-store-operations.ts (6 scorers, SQLite): 3.1 store operations per row
   * in predictBatch and 10.1 in scoreBatch, of which reading the prediction back and re-writing the two calls
   * predictBatch wrote (≈4 per row) would go if scoring ran inside predictBatch. Cheaper writes (one transaction
   * per row's calls) cut more than merging would.
   */
  scoreBatch(input: { plan: EvaluationPlan; modelIndex: number; batchIndex: number }): Promise<ScoreBatchResult>;
  summarizeEvaluation(input: { plan: EvaluationPlan; workflowId: string }): Promise<EvaluationModelResult[]>;
}

/** Activities of the evaluation on `weft-gpu`. */
export interface EvaluationGpuActivities {
  predictBatch(input: PredictBatchInput): Promise<PredictBatchResult>;
}
