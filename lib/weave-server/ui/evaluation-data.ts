import { evaluationCallIds } from '../../evaluation';
import { formatRef, parseRefOfKind, type CallRecord, type LineageStore } from '../../lineage';
import { decideGate } from '../../scoring/gate';
import { pairedBootstrapDifference } from '../../scoring/statistics';
import type { EvaluationSummary, ScoreName } from '../../../workflows/contracts/evaluation';
import type { GateDecision, GatePolicy } from '../../../workflows/contracts/lifecycle';
import { UiInputError } from '../errors';

/** What an EvaluationResult object holds (activities/evaluation.ts summarizeEvaluation writes it). */
export interface EvaluationResultValue {
  evaluation?: string;
  model?: string;
  dataset?: string;
  label?: string;
  rows: { rowIndex: number; id: string; scores: Record<string, number> }[];
  summary: EvaluationSummary;
  'wandb-run-id'?: string;
  workflow_id?: string;
}

export interface EvaluationResultEntry {
  ref: string;
  createdAt: string;
  value: EvaluationResultValue;
  app: string | undefined;
}

/**
 * The app a result belongs to, from the workflow that wrote it: `lifecycle/<app>/…/evaluate` (a pipeline run) or
 * `reevaluate/<app>[-<time>]/evaluate` (the nightly schedule). Results written by other code have none.
 */
export function appOfWorkflow(workflowId: string | undefined): string | undefined {
  if (!workflowId) return undefined;
  const lifecycle = /^lifecycle\/([^/]+)\//.exec(workflowId);
  if (lifecycle) return lifecycle[1];
  const nightly = /^reevaluate\/([^/]+?)(?:-\d{4}-\d\d-\d\dT[^/]*)?(?:\/|$)/.exec(workflowId);
  return nightly?.[1];
}

function isEvaluationResult(value: unknown): value is EvaluationResultValue {
  const candidate = value as Partial<EvaluationResultValue> | null;
  return (
    candidate !== null &&
    typeof candidate === 'object' &&
    Array.isArray(candidate.rows) &&
    candidate.summary !== null &&
    typeof candidate.summary === 'object'
  );
}

/** Every EvaluationResult version of a project, newest first, optionally only one app's. */
export async function listEvaluationResults(
  store: LineageStore,
  scope: { entity?: string; project?: string },
  app?: string,
): Promise<EvaluationResultEntry[]> {
  const versions = await store.objects.versions('EvaluationResult', scope).catch((error: Error) => {
    if (error.name === 'NotFoundError') return [];
    throw error;
  });
  return versions
    .filter((version) => isEvaluationResult(version.value))
    .map((version) => {
      const value = version.value as EvaluationResultValue;
      return { ref: version.ref, createdAt: version.createdAt, value, app: appOfWorkflow(value.workflow_id) };
    })
    .filter((entry) => app === undefined || entry.app === app)
    .sort((left, right) => right.createdAt.localeCompare(left.createdAt));
}

/** One model's part of a compared row: its answer, scores and the documents it retrieved. */
export interface ComparedPrediction {
  answer: string | undefined;
  scores: Record<string, number>;
  documents: string[];
}

export interface ComparedRow {
  rowIndex: number;
  id: string;
  question: string;
  goldAnswer: string;
  predictions: (ComparedPrediction | undefined)[];
  /** Per compared result after the first: its score on the metric minus the first result's (NaN when unpaired). */
  differences: number[];
}

export interface ScoreDifference {
  scorer: string;
  mean: number;
  ciLow: number;
  ciHigh: number;
  count: number;
}

export interface EvaluationComparison {
  results: { ref: string; value: EvaluationResultValue; app: string | undefined }[];
  scorers: string[];
  metric: string;
  policy: GatePolicy;
  /** Per result after the first: paired bootstrap (result − first) of every scorer over the rows both hold. */
  differences: ScoreDifference[][];
  /** Per result after the first: the gate's decision with it as challenger and the first as champion. */
  gates: GateDecision[];
  rows: ComparedRow[];
}

interface PredictionOutput {
  model_output?: { answer?: unknown; contexts?: { documentId?: unknown }[] } | null;
}

/**
 * The `Evaluation.evaluate` call that wrote a result. Its id derives from the result's workflow, evaluation and model
 * (lib/evaluation's evaluationCallIds), so it is one lookup; a result written otherwise is found by its attribute.
 */
async function evaluateCallOf(
  store: LineageStore,
  ref: string,
  value: EvaluationResultValue,
): Promise<CallRecord | undefined> {
  const parsed = parseRefOfKind(ref, 'object');
  if (value.workflow_id && value.evaluation && value.model && value.dataset) {
    try {
      const { evaluateCallId } = evaluationCallIds({
        evaluationRef: value.evaluation,
        datasetRef: value.dataset,
        modelRef: value.model,
        scorerRefs: [],
        workflowId: value.workflow_id,
      });
      const call = await store.calls.get(
        formatRef({ kind: 'call', entity: parsed.entity, project: parsed.project, id: evaluateCallId }),
      );
      if (call.attributes['evaluation-result'] === ref) return call;
    } catch {
      // Not a pipeline-shaped result (other refs, no such call): look it up by its attribute below.
    }
  }
  const [root] = await store.calls.query({
    entity: parsed.entity,
    project: parsed.project,
    attributes: { 'evaluation-result': ref },
    limit: 1,
  });
  return root;
}

/** The per-row predictions the pipeline recorded for a result: the predict_and_score children of its evaluate call. */
async function predictionsOf(
  store: LineageStore,
  ref: string,
  value: EvaluationResultValue,
  rowCount: number,
): Promise<Map<number, ComparedPrediction>> {
  const parsed = parseRefOfKind(ref, 'object');
  const scope = { entity: parsed.entity, project: parsed.project };
  const found = new Map<number, ComparedPrediction>();
  const root = await evaluateCallOf(store, ref, value);
  if (!root) return found;
  const children = await store.calls.query({
    ...scope,
    parentId: root.id,
    limit: Math.min(100_000, rowCount + 1),
  });
  for (const call of children) {
    const rowIndex = Number(call.attributes['row-index']);
    if (!Number.isInteger(rowIndex)) continue;
    const output = (call.output ?? {}) as PredictionOutput & { scores?: Record<string, number> };
    const answer = output.model_output?.answer;
    found.set(rowIndex, {
      answer: typeof answer === 'string' ? answer : undefined,
      scores: {},
      documents: (output.model_output?.contexts ?? []).map((context) => String(context.documentId ?? '')),
    });
  }
  return found;
}

/** Recent comparisons per store: the refs are content digests, so a comparison of the same refs never changes. */
const comparisons = new WeakMap<LineageStore, Map<string, EvaluationComparison>>();
const comparisonsKept = 8;

/** compareEvaluationResults, answered from a small cache for the same refs and policy (paging, sorting, filtering). */
export async function cachedComparison(
  store: LineageStore,
  refs: string[],
  policy: GatePolicy,
): Promise<EvaluationComparison> {
  const cache = comparisons.get(store) ?? new Map<string, EvaluationComparison>();
  comparisons.set(store, cache);
  const key = JSON.stringify([refs, policy]);
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const comparison = await compareEvaluationResults(store, refs, policy);
  cache.set(key, comparison);
  if (cache.size > comparisonsKept) cache.delete(cache.keys().next().value!);
  return comparison;
}

/**
 * Everything the compare page shows for two or more EvaluationResults of one dataset. The first result is the
 * baseline: differences and gates are (each other − first), as the pipeline's gate is (challenger − champion).
 */
export async function compareEvaluationResults(
  store: LineageStore,
  refs: string[],
  policy: GatePolicy,
): Promise<EvaluationComparison> {
  if (refs.length < 2) {
    throw new UiInputError(
      `Compare needs two or more EvaluationResult refs (ids=<ref>&ids=<ref>); got ${refs.length}.`,
    );
  }
  const results: EvaluationComparison['results'] = [];
  for (const ref of refs) {
    const object = await store.objects.get(ref);
    if (!isEvaluationResult(object.value)) {
      throw new UiInputError(`${ref} is not an EvaluationResult: it has no rows and summary.`);
    }
    results.push({ ref: object.ref, value: object.value, app: appOfWorkflow(object.value.workflow_id) });
  }
  const datasets = [...new Set(results.map((result) => result.value.dataset ?? ''))];
  if (datasets.length > 1) {
    throw new UiInputError(
      `These EvaluationResults were computed on different datasets (${datasets.join(', ')}); rows pair only on one dataset.`,
    );
  }
  const scorers = [...new Set(results.flatMap((result) => Object.keys(result.value.summary)))];
  if (!scorers.includes(policy.metric)) {
    throw new UiInputError(`The metric "${policy.metric}" is not a score of these results (${scorers.join(', ')}).`);
  }
  const [baseline, ...others] = results;
  const baselineByRow = new Map(baseline!.value.rows.map((row) => [row.rowIndex, row]));
  const gates = others.map((other) => decideGate(other.value, baseline!.value, policy));
  const differences = others.map((other, index) => {
    const paired = other.value.rows.filter((row) => baselineByRow.has(row.rowIndex));
    return scorers.map((scorer) => {
      const gate = gates[index]!;
      if (scorer === policy.metric && gate.difference !== null && gate.ciLow !== null && gate.ciHigh !== null) {
        // The gate computed this very interval (same rows, options and seed): shown as the gate saw it.
        return { scorer, mean: gate.difference, ciLow: gate.ciLow, ciHigh: gate.ciHigh, count: paired.length };
      }
      const interval = pairedBootstrapDifference(
        paired.map((row) => row.scores[scorer] ?? Number.NaN),
        paired.map((row) => baselineByRow.get(row.rowIndex)!.scores[scorer] ?? Number.NaN),
        { confidence: policy.confidence, resamples: policy.resamples, seed: 11 },
      );
      return { scorer, mean: interval.mean, ciLow: interval.ciLow, ciHigh: interval.ciHigh, count: interval.count };
    });
  });

  const rowCount = Math.max(...results.map((result) => result.value.rows.length));
  const datasetRows = datasets[0] ? await store.datasets.rows(datasets[0]) : [];
  const predictions: Map<number, ComparedPrediction>[] = [];
  for (const result of results) predictions.push(await predictionsOf(store, result.ref, result.value, rowCount));
  const byRow = results.map((result) => new Map(result.value.rows.map((row) => [row.rowIndex, row])));
  const rowIndexes = [...new Set(results.flatMap((result) => result.value.rows.map((row) => row.rowIndex)))].sort(
    (left, right) => left - right,
  );
  const rows: ComparedRow[] = rowIndexes.map((rowIndex) => {
    const datasetRow = (datasetRows[rowIndex] ?? {}) as { question?: unknown; answer?: unknown };
    const perResult = results.map((_, index) => {
      const scored = byRow[index]!.get(rowIndex);
      if (!scored) return undefined;
      const predicted = predictions[index]!.get(rowIndex);
      return { answer: predicted?.answer, scores: scored.scores, documents: predicted?.documents ?? [] };
    });
    const base = perResult[0]?.scores[policy.metric];
    return {
      rowIndex,
      id: byRow.map((rowsOf) => rowsOf.get(rowIndex)?.id).find((id) => id !== undefined) ?? String(rowIndex),
      question: String(datasetRow.question ?? ''),
      goldAnswer: String(datasetRow.answer ?? ''),
      predictions: perResult,
      differences: perResult
        .slice(1)
        .map((prediction) =>
          prediction && typeof base === 'number' ? (prediction.scores[policy.metric] ?? Number.NaN) - base : Number.NaN,
        ),
    };
  });
  return {
    results,
    scorers,
    metric: policy.metric,
    policy,
    differences,
    gates,
    rows,
  };
}

export type { ScoreName };
