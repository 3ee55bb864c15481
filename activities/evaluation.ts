import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { rowDigest, type CallRecord, type LineageStore } from '../lib/lineage';
import { scorerNamed, type ScoredRow } from '../lib/scoring/scorers';
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
import { atBoundary } from './boundary';

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
}

/** Deterministic call ids: a retried or resumed batch writes to the same calls instead of new ones. */
export function evaluationCallId(...parts: (string | number)[]): string {
  const hex = createHash('sha256').update(parts.join('|')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function batchRange(plan: EvaluationPlan, batchIndex: number): { offset: number; limit: number } {
  const offset = batchIndex * plan.batchSize;
  return { offset, limit: Math.min(plan.batchSize, plan.rowCount - offset) };
}

function invalidInput(message: string): Error {
  return Object.assign(new Error(message), { retryable: false });
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

const opNames = {
  evaluate: 'Evaluation.evaluate',
  predictAndScore: 'Evaluation.predict_and_score',
  predict: 'RagModel.predict',
} as const;

/** Calls of one evaluation are found by these attributes; values are strings so `weft calls ls --attr` matches them. */
function rowAttributes(plan: EvaluationPlan, modelIndex: number, rowIndex: number) {
  return {
    'wandb-run-id': plan.wandbRunId,
    'evaluation-run-id': plan.evaluationRunId,
    'model-index': String(modelIndex),
    'row-index': String(rowIndex),
  };
}

export function createEvaluationActivities({ store, rag }: EvaluationActivityDependencies) {
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
      const rowCount = Number((dataset.value as { rows_count?: number; row_count?: number }).row_count ?? NaN);
      const counted = Number.isFinite(rowCount) ? rowCount : (await store.datasets.rows(value.dataset)).length;
      if (counted === 0) throw invalidInput(`The dataset ${value.dataset} of ${evaluationRef} has no rows.`);
      for (const ragModelRef of ragModelRefs) await store.objects.get(ragModelRef);
      const run = await store.runs.create({
        jobType: 'evaluation',
        workflowId: evaluationRunId,
        config: { evaluation: evaluationRef, models: ragModelRefs },
        idempotencyKey: `${evaluationRunId}/evaluation-run`,
      });
      const plan: EvaluationPlan = {
        evaluationRunId,
        wandbRunId: run.id,
        evaluationRef,
        datasetRef: value.dataset,
        rowCount: counted,
        scorers,
        models: ragModelRefs.map((ragModelRef, index) => ({
          ragModelRef,
          label: index === 0 ? 'challenger' : 'champion',
        })),
        batchSize,
        batchCount: Math.ceil(counted / batchSize),
      };
      const startedAt = new Date().toISOString();
      for (const [modelIndex, model] of plan.models.entries()) {
        const id = evaluationCallId(evaluationRunId, modelIndex, 'evaluate');
        await store.calls.upsert({
          id,
          traceId: id,
          opName: opNames.evaluate,
          startedAt,
          inputs: { self: evaluationRef, model: model.ragModelRef },
          attributes: {
            'wandb-run-id': run.id,
            'evaluation-run-id': evaluationRunId,
            'model-index': String(modelIndex),
          },
        });
      }
      return plan;
    },

    async scoreBatch({ plan, modelIndex, batchIndex }) {
      const { offset, limit } = batchRange(plan, batchIndex);
      const rows = parseRows(await store.datasets.rows(plan.datasetRef, { offset, limit }), plan.datasetRef, offset);
      const scorers = plan.scorers.map(scorerNamed);
      const rootId = evaluationCallId(plan.evaluationRunId, modelIndex, 'evaluate');
      for (const [index, row] of rows.entries()) {
        const rowIndex = offset + index;
        const predictCall = await store.calls.get(
          callRef(store, evaluationCallId(plan.evaluationRunId, modelIndex, rowIndex, 'predict')),
        );
        const prediction = predictCall.output as RagPrediction & { cached?: boolean };
        const scored: ScoredRow = {
          answer: row.answer,
          goldDocumentId: row.doc_id,
          prediction: prediction.answer,
          retrievedDocumentIds: prediction.contexts.map((context) => context.documentId),
          retrievedContexts: prediction.contexts.map((context) => context.text),
          latencyMilliseconds: prediction.timings.totalMilliseconds,
        };
        const scores = Object.fromEntries(scorers.map((scorer) => [scorer.name, scorer.score(scored)]));
        const parentId = evaluationCallId(plan.evaluationRunId, modelIndex, rowIndex, 'predict_and_score');
        const endedAt = new Date().toISOString();
        for (const scorer of scorers) {
          await store.calls.upsert({
            id: evaluationCallId(plan.evaluationRunId, modelIndex, rowIndex, `score:${scorer.name}`),
            traceId: rootId,
            parentId,
            opName: `${scorer.name}@v${scorer.version}`,
            startedAt: endedAt,
            endedAt,
            inputs: { output: prediction.answer, answer: row.answer, doc_id: row.doc_id },
            output: scores[scorer.name],
            attributes: rowAttributes(plan, modelIndex, rowIndex),
          });
        }
        await store.calls.upsert({
          id: parentId,
          traceId: rootId,
          parentId: rootId,
          opName: opNames.predictAndScore,
          startedAt: predictCall.startedAt,
          endedAt,
          inputs: { example: { id: row.id, question: row.question }, model: plan.models[modelIndex].ragModelRef },
          output: { output: prediction.answer, scores, model_latency: prediction.timings.totalMilliseconds / 1000 },
          attributes: rowAttributes(plan, modelIndex, rowIndex),
        });
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
        const rootId = evaluationCallId(plan.evaluationRunId, modelIndex, 'evaluate');
        const root = await store.calls.get(callRef(store, rootId));
        await store.calls.upsert({
          id: rootId,
          traceId: rootId,
          opName: opNames.evaluate,
          startedAt: root.startedAt,
          endedAt: new Date().toISOString(),
          inputs: root.inputs,
          output: Object.fromEntries(Object.entries(summary).map(([name, value]) => [name, { mean: value.mean }])),
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
      const rootId = evaluationCallId(plan.evaluationRunId, modelIndex, 'evaluate');
      let cachedRows = 0;
      const pending: { row: EvaluationRow; rowIndex: number; cacheKey: string }[] = [];
      for (const [index, row] of rows.entries()) {
        const rowIndex = offset + index;
        const id = evaluationCallId(plan.evaluationRunId, modelIndex, rowIndex, 'predict');
        const cacheKey = createHash('sha256')
          .update(`${rowDigest(row)}|${identity.key}`)
          .digest('hex');
        const existing = await store.calls.get(callRef(store, id)).catch(() => undefined);
        if (existing?.output) {
          // Predicted by an earlier attempt of this batch (before a worker crash): never predict it twice.
          cachedRows += 1;
          continue;
        }
        if (!fresh && !identity.sampled) {
          const [hit] = await store.calls.query({
            opName: opNames.predict,
            attributes: { 'cache-key': cacheKey },
            limit: 1,
          });
          if (hit?.output) {
            await recordPrediction(
              store,
              plan,
              modelIndex,
              rowIndex,
              rootId,
              row,
              hit.output as RagPrediction,
              cacheKey,
              true,
            );
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
          await recordPrediction(
            store,
            plan,
            modelIndex,
            entry.rowIndex,
            rootId,
            entry.row,
            predictions[index],
            entry.cacheKey,
            false,
            startedAt,
          );
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

function callRef(store: LineageStore, id: string): string {
  return store.callRef(id);
}

async function recordPrediction(
  store: LineageStore,
  plan: EvaluationPlan,
  modelIndex: number,
  rowIndex: number,
  rootId: string,
  row: EvaluationRow,
  prediction: RagPrediction,
  cacheKey: string,
  cached: boolean,
  startedAt = new Date().toISOString(),
): Promise<void> {
  await store.calls.upsert({
    id: evaluationCallId(plan.evaluationRunId, modelIndex, rowIndex, 'predict'),
    traceId: rootId,
    parentId: evaluationCallId(plan.evaluationRunId, modelIndex, rowIndex, 'predict_and_score'),
    opName: opNames.predict,
    startedAt,
    endedAt: new Date().toISOString(),
    inputs: { self: plan.models[modelIndex].ragModelRef, question: row.question },
    output: prediction,
    attributes: {
      ...rowAttributes(plan, modelIndex, rowIndex),
      'cache-key': cacheKey,
      cached,
      'activity-attempt': Context.current().info.attempt,
    },
  });
}

async function perRowScores(store: LineageStore, plan: EvaluationPlan, modelIndex: number) {
  const calls: CallRecord[] = await store.calls.query({
    opName: opNames.predictAndScore,
    attributes: { 'evaluation-run-id': plan.evaluationRunId, 'model-index': String(modelIndex) },
    limit: plan.rowCount + 1,
  });
  return calls
    .map((call) => ({
      rowIndex: Number(call.attributes['row-index']),
      id: String((call.inputs.example as { id?: string } | undefined)?.id ?? ''),
      scores: ((call.output as { scores?: Record<string, number> } | null)?.scores ?? {}) as Record<string, number>,
    }))
    .sort((left, right) => left.rowIndex - right.rowIndex);
}
