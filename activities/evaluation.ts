import { Context } from '@temporalio/activity';
import { rowDigest, sha256Hex, type LineageStore } from '../lib/lineage';
import {
  batchRange,
  callContext,
  evaluateCall,
  evaluationCallIds,
  opRefs,
  parseRows,
  publishEvaluationOps,
  publishOpObject,
  recordedRows,
  rowCalls,
  scalarAttributes,
  scorerOpName,
  scorerOps,
  summarizeRows,
  type EvaluationRow,
  type RagPrediction,
  type RagPredictionService,
} from '../lib/evaluation';
import { scoredRowOf, scorerNamed } from '../lib/scoring/scorers';
import type {
  EvaluationGpuActivities,
  EvaluationModelResult,
  EvaluationPipelineActivities,
  EvaluationPlan,
} from '../workflows/contracts/evaluation';
import { atBoundary, invalidInput } from './boundary';

export interface EvaluationActivityDependencies {
  store: LineageStore;
  rag: RagPredictionService;
  /** `host:pid` of the worker: recorded on each prediction, so a user sees which gpu worker answered a row. */
  workerName?: string;
}

/** Times of a row's calls before they are known: the ids of its calls do not depend on them. */
const noTimes = { startedAt: '', predictedAt: '', endedAt: '' };

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
        for (const op of scorerOps(plan)) await publishOpObject(store, op);
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
        const [predictAndScore, modelCall] = rowCalls(context, rowIndex, row, undefined, {}, noTimes);
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
          { startedAt, predictedAt: recorded.endedAt ?? startedAt, endedAt: new Date().toISOString() },
        );
        for (const call of calls) await store.calls.upsert(call);
      }
      return { modelIndex, batchIndex, scoredRows: rows.length };
    },

    async summarizeEvaluation({ plan, workflowId }) {
      const results: EvaluationModelResult[] = [];
      for (const [modelIndex, model] of plan.models.entries()) {
        const recorded = await recordedRows(store, plan, modelIndex);
        const { scores: summary, evaluateOutput } = summarizeRows(plan.scorers, recorded);
        const published = await store.objects.publish({
          name: 'EvaluationResult',
          value: {
            _type: 'EvaluationResult',
            evaluation: plan.evaluationRef,
            model: model.ragModelRef,
            dataset: plan.datasetRef,
            label: model.label,
            rows: recorded.rows,
            summary,
            'wandb-run-id': plan.wandbRunId,
            workflow_id: workflowId,
          },
          idempotencyKey: `${plan.evaluationRunId}/result/${modelIndex}`,
        });
        const context = callContext(plan, modelIndex);
        const root = await store.calls.get(store.callRef(evaluationCallIds(context).evaluateCallId));
        await store.calls.upsert({
          ...evaluateCall(context, {
            startedAt: root.startedAt,
            endedAt: new Date().toISOString(),
            summary: evaluateOutput,
          }),
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
          {
            startedAt,
            predictedAt: new Date().toISOString(),
            endedAt: '',
          },
        );
        await store.calls.upsert({ ...predictAndScore, endedAt: undefined, output: undefined });
        await store.calls.upsert(modelCall);
      };
      for (const [index, row] of rows.entries()) {
        const rowIndex = offset + index;
        const cacheKey = sha256Hex(`${rowDigest(row)}|${identity.key}`);
        const [, modelCall] = rowCalls(callContext(plan, modelIndex), rowIndex, row, undefined, {}, noTimes);
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
  return {
    pipeline: atBoundary(pipeline),
    gpu: atBoundary(gpu),
  };
}
