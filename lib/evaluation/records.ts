import { WeftError } from '../common/errors';
import { parseRef, type CallRecord, type LineageStore } from '../lineage';
import { bootstrapMean } from '../scoring/statistics';
import type { EvaluationPlan, EvaluationSummary, ScoreName } from '../../workflows/contracts/evaluation';
import { errorTypes } from '../../workflows/contracts/errors';
import {
  evaluationOpObjects,
  opObject,
  rowEvaluationCalls,
  summarizePredictAndScoreOutputs,
  type EvaluationCallContext,
  type PredictAndScoreOutput,
} from './calls';

/**
 * The evaluation record of a pipeline run: which rows a batch holds, the call context of one model's evaluation,
 * the per-row scores read back from its calls, and the EvaluationResult object with its one summary.
 */

/** One answered question, as the RAG runtime returns it. */
export interface RagPrediction {
  answer: string;
  contexts: { documentId: string; title?: string; text: string; score: number }[];
  promptTokens: number;
  completionTokens: number;
  timings: { retrievalMilliseconds: number; generationMilliseconds: number; totalMilliseconds: number };
}

/** What the evaluation needs from the RAG runtime (lib/rag's runtime implements it). */
export interface RagPredictionService {
  predict(ragModelRef: string, questions: string[]): Promise<RagPrediction[]>;
  /**
   * What a cached prediction must match besides the row: the RagModel digest and the content version
   * of the collection behind its alias. `sampled` RagModels (temperature > 0) are never served from cache.
   */
  cacheIdentity(ragModelRef: string): Promise<{ key: string; sampled: boolean }>;
}

export interface EvaluationRow {
  id: string;
  question: string;
  answer: string;
  doc_id: string;
}

/** A dataset row an evaluation cannot use: bad input that no retry fixes. */
export class InvalidEvaluationRowError extends WeftError {
  readonly retryable = false;
  // Reported as the pipeline's bad-input type, as every row check before it was.
  override get type(): string {
    return errorTypes.invalidInput;
  }
}

/** The rows of one batch: `[offset, offset + limit)`. */
export function batchRange(plan: EvaluationPlan, batchIndex: number): { offset: number; limit: number } {
  const offset = batchIndex * plan.batchSize;
  return { offset, limit: Math.min(plan.batchSize, plan.rowCount - offset) };
}

export function parseRows(rows: Record<string, unknown>[], datasetRef: string, offset: number): EvaluationRow[] {
  return rows.map((row, index) => {
    for (const field of ['question', 'answer', 'doc_id'] as const) {
      if (typeof row[field] !== 'string' || (row[field] as string).trim() === '') {
        throw new InvalidEvaluationRowError(
          `Row ${offset + index} of ${datasetRef} has no '${field}': every evaluation row needs question, answer and doc_id (strings).`,
        );
      }
    }
    return {
      id: String(row.id ?? offset + index),
      question: row.question,
      answer: row.answer,
      doc_id: row.doc_id,
    } as EvaluationRow;
  });
}

/** Op names are identifiers (`hit@5` is not one): the score `hit@5` is recorded by the op `hit_at_5`. */
export function scorerOpName(scorer: string): string {
  return scorer.replace(/@/g, '_at_');
}

/** The entity/project an evaluation's calls and ops are written to: the Evaluation object's. */
function evaluationScope(plan: EvaluationPlan): { entity: string; project: string } {
  const evaluation = parseRef(plan.evaluationRef);
  if (evaluation.kind !== 'object') {
    throw new InvalidEvaluationRowError(`The evaluation ${plan.evaluationRef} is not an object ref.`);
  }
  return { entity: evaluation.entity, project: evaluation.project };
}

/** The scorer ops of a plan, as the SDK names them. */
export function scorerOps(plan: EvaluationPlan) {
  const scope = evaluationScope(plan);
  return plan.scorers.map((name) => opObject(scope.entity, scope.project, scorerOpName(name)));
}

/**
 * The calls of one model's evaluation, shaped as the weave SDK writes an `Evaluation.evaluate` run (calls.ts): ids
 * derive from the evaluation run id, so a retried or resumed batch upserts the same calls. Scorers are ops named
 * after the scorer (exact_match, f1, …).
 */
export function callContext(
  plan: EvaluationPlan,
  modelIndex: number,
  rowAttributes: Record<string, string> = {},
): EvaluationCallContext {
  return {
    evaluationRef: plan.evaluationRef,
    datasetRef: plan.datasetRef,
    modelRef: plan.models[modelIndex].ragModelRef,
    scorerRefs: scorerOps(plan).map((op) => op.ref),
    workflowId: plan.evaluationRunId,
    wandbRunId: plan.wandbRunId,
    attributes: { 'evaluation-run-id': plan.evaluationRunId, 'model-index': String(modelIndex), ...rowAttributes },
  };
}

/** The op refs calls of this plan are filed under (what `weft calls ls --op` and the cache query match). */
export function opRefs(plan: EvaluationPlan, modelIndex: number): { predictAndScore: string; predict: string } {
  const scope = evaluationScope(plan);
  const model = parseRef(plan.models[modelIndex].ragModelRef);
  if (model.kind !== 'object') throw new InvalidEvaluationRowError('The RagModel must be an object ref.');
  const ops = evaluationOpObjects(scope.entity, scope.project, model.name);
  return { predictAndScore: ops.predictAndScore.ref, predict: ops.predict!.ref };
}

/** One row's calls (rowEvaluationCalls) from its parts: stored row, prediction (or none yet), scores, times. */
export function rowCalls(
  context: EvaluationCallContext,
  rowIndex: number,
  row: EvaluationRow,
  prediction: RagPrediction | undefined,
  scores: Record<string, number>,
  times: { startedAt: string; predictedAt: string; endedAt: string },
) {
  return rowEvaluationCalls(context, {
    rowIndex,
    row: row as unknown as Record<string, unknown>,
    prediction,
    scores,
    ...times,
  });
}

/** Attributes as stored, reduced to the scalar ones a call context can carry again. */
export function scalarAttributes(attributes: CallRecord['attributes']): Record<string, string> {
  const scalars: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (['string', 'number', 'boolean'].includes(typeof value) && key !== 'workflow-id' && key !== 'wandb-run-id') {
      scalars[key] = String(value);
    }
  }
  return scalars;
}

/** One row of an EvaluationResult: its position, id and scores by score name. */
export interface RowScores {
  rowIndex: number;
  id: string;
  scores: Record<string, number>;
}

/** What an EvaluationResult object holds (the part the gate and the nightly check read). */
export interface StoredEvaluationResult {
  rows: RowScores[];
  summary: EvaluationSummary;
}

/** The predict_and_score calls of one model, in row order: per-row scores and the SDK's outputs. */
export async function recordedRows(
  store: LineageStore,
  plan: EvaluationPlan,
  modelIndex: number,
): Promise<{ rows: RowScores[]; outputs: PredictAndScoreOutput[] }> {
  const calls: CallRecord[] = await store.calls.query({
    opName: opRefs(plan, modelIndex).predictAndScore,
    attributes: { 'evaluation-run-id': plan.evaluationRunId, 'model-index': String(modelIndex) },
    limit: plan.rowCount + 1,
  });
  const ordered = calls
    .map((call) => ({ call, rowIndex: Number(call.attributes['row-index']) }))
    .sort((left, right) => left.rowIndex - right.rowIndex);
  return {
    rows: ordered.map(({ call, rowIndex }) => {
      const recorded = (call.output as { scores?: Record<string, number> } | null)?.scores ?? {};
      return {
        rowIndex,
        id: String(call.attributes['row-id'] ?? ''),
        // Back from op names to score names (hit_at_5 → hit@5).
        scores: Object.fromEntries(plan.scorers.map((name) => [name, recorded[scorerOpName(name)]])),
      };
    }),
    outputs: ordered.map(({ call }) => call.output as PredictAndScoreOutput),
  };
}

/**
 * The one summary of a model's evaluation. `scores` (mean and bootstrap 95% CI per score name) is what the
 * EvaluationResult, the gate and the CLI read; `evaluateOutput` is the same rows summarized as the SDK's
 * `summarizeResults` does, the output of the `Evaluation.evaluate` call.
 */
export function summarizeRows(
  scorers: readonly string[],
  recorded: { rows: RowScores[]; outputs: PredictAndScoreOutput[] },
): { scores: EvaluationSummary; evaluateOutput: Record<string, unknown> } {
  const scores: EvaluationSummary = {};
  for (const name of scorers as ScoreName[]) {
    const values = recorded.rows.map((row) => row.scores[name]).filter((value) => typeof value === 'number');
    const interval = bootstrapMean(values, { seed: 7 });
    scores[name] = { mean: interval.mean, ciLow: interval.ciLow, ciHigh: interval.ciHigh, count: interval.count };
  }
  return { scores, evaluateOutput: summarizePredictAndScoreOutputs(recorded.outputs) };
}
