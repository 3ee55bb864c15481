import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { parseRef, rowDigest, type CallRecord, type LineageStore } from '../lib/lineage';
import {
  evaluateCall,
  evaluationCallIds,
  evaluationOpObjects,
  opObject,
  publishEvaluationOps,
  publishOpObject,
  rowEvaluationCalls,
  type EvaluationCallContext,
} from '../lib/weave-server/evaluation-calls';
import { scoredRowOf, scorerNamed } from '../lib/scoring/scorers';
import { bootstrapMean, pairedBootstrapDifference } from '../lib/scoring/statistics';
import type {
  EvaluationGpuActivities,
  EvaluationModelResult,
  EvaluationPipelineActivities,
  EvaluationPlan,
  EvaluationSummary,
  ScoreName,
} from '../workflows/contracts/evaluation';
import type { GateDecision, LifecyclePipelineActivities } from '../workflows/contracts/lifecycle';
import { atBoundary, invalidInput } from './boundary';

/** One answered question, as the RAG runtime returns it. */
export interface RagPrediction {
  answer: string;
  contexts: { documentId: string; title?: string; text: string; score: number }[];
  promptTokens: number;
  completionTokens: number;
  timings: { retrievalMilliseconds: number; generationMilliseconds: number; totalMilliseconds: number };
}

/** What the evaluation needs from the RAG runtime (lib/rag implements it). */
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

export interface EvaluationActivityDependencies {
  store: LineageStore;
  rag: RagPredictionService;
  /** `host:pid` of the worker: recorded on each prediction, so a user sees which gpu worker answered a row. */
  workerName?: string;
}

function batchRange(plan: EvaluationPlan, batchIndex: number): { offset: number; limit: number } {
  const offset = batchIndex * plan.batchSize;
  return { offset, limit: Math.min(plan.batchSize, plan.rowCount - offset) };
}

function parseRows(rows: Record<string, unknown>[], datasetRef: string, offset: number): EvaluationRow[] {
  return rows.map((row, index) => {
    for (const field of ['question', 'answer', 'doc_id'] as const) {
      if (typeof row[field] !== 'string' || (row[field] as string).trim() === '') {
        throw invalidInput(
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

/**
 * The calls of one model's evaluation, shaped as the weave SDK writes an `Evaluation.evaluate` run
 * (lib/weave-server/evaluation-calls.ts): ids derive from the evaluation run id, so a retried or resumed
 * batch upserts the same calls. Scorers are ops named after the scorer (exact_match, f1, …).
 */
function callContext(
  plan: EvaluationPlan,
  modelIndex: number,
  rowAttributes: Record<string, string> = {},
): EvaluationCallContext {
  const evaluation = parseRef(plan.evaluationRef);
  const scope = evaluation.kind === 'object' ? evaluation : { entity: 'weft', project: 'rag-demo' };
  return {
    evaluationRef: plan.evaluationRef,
    datasetRef: plan.datasetRef,
    modelRef: plan.models[modelIndex].ragModelRef,
    scorerRefs: plan.scorers.map((name) => opObject(scope.entity, scope.project, scorerOpName(name)).ref),
    workflowId: plan.evaluationRunId,
    wandbRunId: plan.wandbRunId,
    attributes: { 'evaluation-run-id': plan.evaluationRunId, 'model-index': String(modelIndex), ...rowAttributes },
  };
}

/** Op names are identifiers (`hit@5` is not one): the score `hit@5` is recorded by the op `hit_at_5`. */
export function scorerOpName(scorer: string): string {
  return scorer.replace(/@/g, '_at_');
}

/** The op refs calls of this plan are filed under (what `weft calls ls --op` and the cache query match). */
function opRefs(plan: EvaluationPlan, modelIndex: number) {
  const evaluation = parseRef(plan.evaluationRef);
  const model = parseRef(plan.models[modelIndex].ragModelRef);
  if (evaluation.kind !== 'object' || model.kind !== 'object')
    throw invalidInput('Evaluation and RagModel must be object refs.');
  const ops = evaluationOpObjects(evaluation.entity, evaluation.project, model.name);
  return { predictAndScore: ops.predictAndScore.ref, predict: ops.predict!.ref };
}

/** Rows as rowEvaluationCalls wants them: stored row, prediction (or none yet), scores, times. */
function rowCalls(
  context: EvaluationCallContext,
  rowIndex: number,
  row: EvaluationRow,
  prediction: RagPrediction | undefined,
  scores: Record<string, number>,
  startedAt: string,
  predictedAt: string,
  endedAt: string,
) {
  return rowEvaluationCalls(context, {
    rowIndex,
    row: row as unknown as Record<string, unknown>,
    prediction,
    scores,
    startedAt,
    predictedAt,
    endedAt,
  });
}

export function createEvaluationActivities({ store, rag, workerName }: EvaluationActivityDependencies) {
  const pipeline: EvaluationPipelineActivities = {
    async planEvaluation({ evaluationRef, ragModelRefs, batchSize, evaluationRunId }) {
      if (ragModelRefs.length === 0) throw invalidInput('An evaluation needs at least one RagModel ref.');
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1024) {
        throw invalidInput(`The batch size must be a whole number from 1 to 1024, got ${batchSize}.`);
      }
      const evaluation = await store.objects.get(evaluationRef);
      const value = evaluation.value as { dataset?: unknown; scorers?: unknown };
      if (typeof value.dataset !== 'string' || !Array.isArray(value.scorers)) {
        throw invalidInput(`${evaluationRef} is not an Evaluation: it needs a 'dataset' ref and a 'scorers' list.`);
      }
      const scorers = value.scorers.map(String);
      scorers.forEach((name) => scorerNamed(name));
      const dataset = await store.objects.get(value.dataset);
      const rowCount = (await store.datasets.rows(value.dataset)).length;
      if (rowCount === 0) throw invalidInput(`The dataset ${value.dataset} of ${evaluationRef} has no rows.`);
      const models = [];
      for (const ragModelRef of ragModelRefs) models.push((await store.objects.get(ragModelRef)).ref);
      const run = await store.runs.create({
        jobType: 'evaluation',
        workflowId: evaluationRunId,
        config: { evaluation: evaluation.ref, models },
        idempotencyKey: `${evaluationRunId}/evaluation-run`,
      });
      const plan: EvaluationPlan = {
        evaluationRunId,
        wandbRunId: run.id,
        evaluationRef: evaluation.ref,
        datasetRef: dataset.ref,
        rowCount,
        scorers,
        models: models.map((ragModelRef, index) => ({ ragModelRef, label: index === 0 ? 'challenger' : 'champion' })),
        batchSize,
        batchCount: Math.ceil(rowCount / batchSize),
      };
      const startedAt = new Date().toISOString();
      for (const modelIndex of plan.models.keys()) {
        const context = callContext(plan, modelIndex);
        await publishEvaluationOps(store, context);
        const scope = parseRef(plan.evaluationRef) as { entity: string; project: string };
        for (const name of plan.scorers) {
          await publishOpObject(store, opObject(scope.entity, scope.project, scorerOpName(name)));
        }
        await store.calls.upsert(evaluateCall(context, { startedAt }));
      }
      return plan;
    },

    async scoreBatch({ plan, modelIndex, batchIndex }) {
      const { offset, limit } = batchRange(plan, batchIndex);
      const rows = parseRows(await store.datasets.rows(plan.datasetRef, { offset, limit }), plan.datasetRef, offset);
      const scorers = plan.scorers.map(scorerNamed);
      for (const [index, row] of rows.entries()) {
        const rowIndex = offset + index;
        const context = callContext(plan, modelIndex, { 'row-index': String(rowIndex) });
        const [predictAndScore, modelCall] = rowCalls(context, rowIndex, row, undefined, {}, '', '', '');
        const recorded = await store.calls.get(store.callRef(modelCall.id));
        const prediction = recorded.output as RagPrediction;
        const scored = scoredRowOf(row, prediction);
        const scores = Object.fromEntries(scorers.map((scorer) => [scorerOpName(scorer.name), scorer.score(scored)]));
        const predictAndScoreRecord = await store.calls.get(store.callRef(predictAndScore.id)).catch(() => undefined);
        const startedAt = predictAndScoreRecord?.startedAt ?? recorded.startedAt;
        const calls = rowCalls(
          { ...context, attributes: { ...context.attributes, ...scalarAttributes(recorded.attributes) } },
          rowIndex,
          row,
          prediction,
          scores,
          startedAt,
          recorded.endedAt ?? startedAt,
          new Date().toISOString(),
        );
        for (const call of calls) await store.calls.upsert(call);
      }
      return { modelIndex, batchIndex, scoredRows: rows.length };
    },

    async summarizeEvaluation({ plan, workflowId }) {
      const results: EvaluationModelResult[] = [];
      for (const [modelIndex, model] of plan.models.entries()) {
        const rowScores = await perRowScores(store, plan, modelIndex);
        const summary: EvaluationSummary = {};
        for (const name of plan.scorers as ScoreName[]) {
          const values = rowScores.map((row) => row.scores[name]).filter((value) => typeof value === 'number');
          const interval = bootstrapMean(values, { seed: 7 });
          summary[name] = {
            mean: interval.mean,
            ciLow: interval.ciLow,
            ciHigh: interval.ciHigh,
            count: interval.count,
          };
        }
        const published = await store.objects.publish({
          name: 'EvaluationResult',
          value: {
            _type: 'EvaluationResult',
            evaluation: plan.evaluationRef,
            model: model.ragModelRef,
            dataset: plan.datasetRef,
            label: model.label,
            rows: rowScores,
            summary,
            'wandb-run-id': plan.wandbRunId,
            workflow_id: workflowId,
          },
          idempotencyKey: `${plan.evaluationRunId}/result/${modelIndex}`,
        });
        const context = callContext(plan, modelIndex);
        const root = await store.calls.get(store.callRef(evaluationCallIds(context).evaluateCallId));
        // The SDK's evaluate output: per scorer its mean, plus the model latency.
        const output: Record<string, unknown> = Object.fromEntries(
          Object.entries(summary).map(([name, value]) => [name, { mean: value.mean }]),
        );
        await store.calls.upsert({
          ...evaluateCall(context, { startedAt: root.startedAt, endedAt: new Date().toISOString(), summary: output }),
          attributes: { ...root.attributes, 'evaluation-result': published.ref },
        });
        results.push({
          ragModelRef: model.ragModelRef,
          label: model.label,
          evaluationResultRef: published.ref,
          summary,
        });
      }
      await store.runs.finish(plan.wandbRunId, {
        summary: Object.fromEntries(
          Object.entries(results[0]?.summary ?? {}).map(([name, value]) => [name, value.mean]),
        ),
        state: 'finished',
      });
      return results;
    },
  };

  const gpu: EvaluationGpuActivities = {
    async predictBatch({ plan, modelIndex, batchIndex, fresh }) {
      const { offset, limit } = batchRange(plan, batchIndex);
      const rows = parseRows(await store.datasets.rows(plan.datasetRef, { offset, limit }), plan.datasetRef, offset);
      const model = plan.models[modelIndex];
      const identity = await rag.cacheIdentity(model.ragModelRef);
      const predictOp = opRefs(plan, modelIndex).predict;
      let cachedRows = 0;
      const pending: { row: EvaluationRow; rowIndex: number; cacheKey: string }[] = [];
      const record = async (
        rowIndex: number,
        row: EvaluationRow,
        prediction: RagPrediction,
        cacheKey: string,
        cached: boolean,
        startedAt: string,
      ) => {
        const context = callContext(plan, modelIndex, {
          'row-index': String(rowIndex),
          'row-id': row.id,
          'cache-key': cacheKey,
          cached: String(cached),
          'activity-attempt': String(Context.current().info.attempt),
          ...(workerName ? { worker: workerName } : {}),
        });
        // The row's predict_and_score call (no scores yet) and its model call; scoreBatch completes them.
        const [predictAndScore, modelCall] = rowCalls(
          context,
          rowIndex,
          row,
          prediction,
          {},
          startedAt,
          new Date().toISOString(),
          '',
        );
        await store.calls.upsert({ ...predictAndScore, endedAt: undefined, output: undefined });
        await store.calls.upsert(modelCall);
      };
      for (const [index, row] of rows.entries()) {
        const rowIndex = offset + index;
        const cacheKey = createHash('sha256')
          .update(`${rowDigest(row)}|${identity.key}`)
          .digest('hex');
        const [, modelCall] = rowCalls(callContext(plan, modelIndex), rowIndex, row, undefined, {}, '', '', '');
        const existing = await store.calls.get(store.callRef(modelCall.id)).catch(() => undefined);
        if (existing?.output) {
          // Predicted by an earlier attempt of this batch (before a worker crash): never predict it twice.
          cachedRows += 1;
          continue;
        }
        if (!fresh && !identity.sampled) {
          const [hit] = await store.calls.query({ opName: predictOp, attributes: { 'cache-key': cacheKey }, limit: 1 });
          if (hit?.output) {
            await record(rowIndex, row, hit.output as RagPrediction, cacheKey, true, new Date().toISOString());
            cachedRows += 1;
            continue;
          }
        }
        pending.push({ row, rowIndex, cacheKey });
      }
      if (pending.length > 0) {
        const startedAt = new Date().toISOString();
        const predictions = await rag.predict(
          model.ragModelRef,
          pending.map((entry) => entry.row.question),
        );
        Context.current().heartbeat({ batchIndex, predictedRows: pending.length });
        for (const [index, entry] of pending.entries()) {
          await record(entry.rowIndex, entry.row, predictions[index], entry.cacheKey, false, startedAt);
        }
      }
      return { modelIndex, batchIndex, predictedRows: pending.length, cachedRows };
    },
  };
  const gate: Pick<LifecyclePipelineActivities, 'gateStatistics'> = {
    async gateStatistics({ challengerResultRef, championResultRef, policy }): Promise<GateDecision> {
      const challenger = (await store.objects.get(challengerResultRef)).value as StoredEvaluationResult;
      const challengerScores = challenger.rows.map((row) => row.scores[policy.metric] ?? Number.NaN);
      const challengerMean = challenger.summary[policy.metric]?.mean ?? Number.NaN;
      if (championResultRef === null) {
        const failing = Object.entries(policy.thresholds).filter(
          ([name, threshold]) => !((challenger.summary[name as ScoreName]?.mean ?? Number.NaN) >= (threshold ?? 0)),
        );
        return {
          decision: failing.length === 0 ? 'pass' : 'fail',
          metric: policy.metric,
          challengerMean,
          championMean: null,
          difference: null,
          ciLow: null,
          ciHigh: null,
          margin: policy.margin,
          reason:
            failing.length === 0
              ? `no champion: every threshold met (${Object.entries(policy.thresholds)
                  .map(([name, value]) => `${name} ≥ ${value}`)
                  .join(', ')})`
              : `no champion: below threshold on ${failing.map(([name, value]) => `${name} (${challenger.summary[name as ScoreName]?.mean?.toFixed(3)} < ${value})`).join(', ')}`,
        };
      }
      const champion = (await store.objects.get(championResultRef)).value as StoredEvaluationResult;
      const championByRow = new Map(
        champion.rows.map((row) => [row.rowIndex, row.scores[policy.metric] ?? Number.NaN]),
      );
      const paired = challenger.rows.filter((row) => championByRow.has(row.rowIndex));
      const interval = pairedBootstrapDifference(
        paired.map((row) => row.scores[policy.metric] ?? Number.NaN),
        paired.map((row) => championByRow.get(row.rowIndex)!),
        { confidence: policy.confidence, resamples: policy.resamples, seed: 11 },
      );
      const pass = interval.ciLow > policy.margin;
      const championMean = champion.summary[policy.metric]?.mean ?? Number.NaN;
      return {
        decision: pass ? 'pass' : 'fail',
        metric: policy.metric,
        challengerMean: challengerScores.length ? challengerMean : Number.NaN,
        championMean,
        difference: interval.mean,
        ciLow: interval.ciLow,
        ciHigh: interval.ciHigh,
        margin: policy.margin,
        reason: `${policy.metric}: challenger − champion = ${interval.mean.toFixed(3)}, ${Math.round(policy.confidence * 100)}% CI [${interval.ciLow.toFixed(3)}, ${interval.ciHigh.toFixed(3)}] over ${interval.count} paired rows; ${pass ? 'lower bound above' : 'lower bound not above'} margin ${policy.margin}`,
      };
    },
  };

  return {
    pipeline: atBoundary({ ...pipeline, ...gate }),
    gpu: atBoundary(gpu),
  };
}

interface StoredEvaluationResult {
  rows: { rowIndex: number; id: string; scores: Record<string, number> }[];
  summary: EvaluationSummary;
}

/** Attributes as stored, reduced to the scalar ones a call context can carry again. */
function scalarAttributes(attributes: CallRecord['attributes']): Record<string, string> {
  const scalars: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (['string', 'number', 'boolean'].includes(typeof value) && key !== 'workflow-id' && key !== 'wandb-run-id') {
      scalars[key] = String(value);
    }
  }
  return scalars;
}

async function perRowScores(store: LineageStore, plan: EvaluationPlan, modelIndex: number) {
  const calls: CallRecord[] = await store.calls.query({
    opName: opRefs(plan, modelIndex).predictAndScore,
    attributes: { 'evaluation-run-id': plan.evaluationRunId, 'model-index': String(modelIndex) },
    limit: plan.rowCount + 1,
  });
  return calls
    .map((call) => {
      const recorded = (call.output as { scores?: Record<string, number> } | null)?.scores ?? {};
      return {
        rowIndex: Number(call.attributes['row-index']),
        id: String(call.attributes['row-id'] ?? ''),
        // Back from op names to score names (hit_at_5 → hit@5).
        scores: Object.fromEntries(plan.scorers.map((name) => [name, recorded[scorerOpName(name)]])),
      };
    })
    .sort((left, right) => left.rowIndex - right.rowIndex);
}
