import crypto from 'node:crypto';
import {
  bytesDigest,
  objectDigest,
  rowDigest,
  type CallAttributeValue,
  type CallInput,
  type LineageStore,
} from '../lineage';

/**
 * Call records shaped as the weave SDK (0.11) writes an `Evaluation.evaluate` run, so a weft pipeline's
 * evaluation shows in weft (and in any Weave UI it is mirrored to) exactly like one run from user code:
 *
 *     Evaluation.evaluate                  inputs {self: evaluation, model}         output: summary
 *     └─ Evaluation.predictAndScore        inputs {self, model, example: row ref}   output {model_success, model_output, scores, model_latency}
 *        ├─ <model op>                     inputs {[self: model,] arg0: {datasetRow}} output: prediction
 *        └─ <scorer op> (one per scorer)   inputs {arg0: {datasetRow, modelOutput}}  output: score
 *
 * Everything here is pure: ids derive from the workflow id and the row index, so a retried activity
 * upserts the same calls instead of adding new ones (store.calls.upsert merges by id).
 */

/** The weave SDK version whose call shapes these functions reproduce. */
export const WEAVE_SDK_VERSION = '0.11.1';

/** Where weft's own Evaluation ops live; the SDK saves the code of an op as a file and the op as a CustomWeaveType object. */
export interface OpObject {
  entity: string;
  project: string;
  name: string;
  /** The op object's value: `{_type: 'CustomWeaveType', weave_type: {type: 'Op'}, files: {'obj.py': digest}, load_op: 'NO_LOAD_OP'}`. */
  value: Record<string, unknown>;
  /** The text stored as the op's `obj.py` file (store.files.put). */
  source: string;
  digest: string;
  /** `weave:///<entity>/<project>/op/<name>:<digest>`. */
  ref: string;
}

export interface EvaluationOpRefs {
  /** Default: weft's `Evaluation.evaluate` op (see evaluationOpObjects). */
  evaluate: string;
  /** Default: weft's `Evaluation.predictAndScore` op. */
  predictAndScore: string;
}

export interface EvaluationCallContext {
  /** `weave:///<entity>/<project>/object/<Evaluation name>:<digest>`: calls are written to its entity/project. */
  evaluationRef: string;
  /** The Dataset the rows come from: row refs are `<datasetRef>/attr/rows/id/<row digest>`, as the SDK writes them. */
  datasetRef: string;
  /** The model: an object ref (`…/object/RagModel:<digest>`) or an op ref (`…/op/<name>:<digest>`). */
  modelRef: string;
  /** The op that predicts, when the model is an object (default weft's `<ModelName>.predict` op, see evaluationOpObjects); an op model is its own predict op. */
  predictOpRef?: string;
  /** Scorer op refs, in the order they run; a score's key is the op name, as in the SDK's results. */
  scorerRefs: readonly string[];
  /** Temporal workflow id: seeds the call ids, so retries and replays upsert the same calls. */
  workflowId: string;
  /** W&B run the evaluation belongs to; recorded as the `wandb-run-id` attribute on every call. */
  wandbRunId?: string;
  /** Extra attributes on every call (scalars or records of them). */
  attributes?: Record<string, CallAttributeValue>;
  /** The ops of the two Evaluation methods; default weft's own (evaluationOpObjects). */
  opRefs?: Partial<EvaluationOpRefs>;
  /** `attributes.weave.source`: the SDK writes `js-sdk`; weft writes `weft` so the origin stays visible. */
  source?: string;
}

export interface RowEvaluation {
  /** Position of the row in the dataset (seeds the ids of its calls). */
  rowIndex: number;
  /** The dataset row as stored (its digest names it in the `example` ref). */
  row: Record<string, unknown>;
  /** The model's output; absent when the model failed. */
  prediction?: unknown;
  /** The model's error message, when it failed (no scorer runs then, as in the SDK). */
  modelError?: string;
  /** Scores by scorer name (the op name in scorerRefs); a scorer that threw is absent or undefined. */
  scores: Record<string, unknown>;
  /** When predict_and_score started and ended (ISO-8601); model and scorer calls nest inside. */
  startedAt: string;
  endedAt: string;
  /** When the model call ended (default: startedAt); the scorers run from here to endedAt. */
  predictedAt?: string;
}

interface ParsedRef {
  entity: string;
  project: string;
  kind: string;
  name: string;
  digest: string;
}

function parseWeaveRef(ref: string, what: string): ParsedRef {
  const match = /^weave:\/\/\/([^/]+)\/([^/]+)\/(object|op)\/([^/:]+):([^/]+)$/.exec(ref);
  if (!match) {
    throw new TypeError(
      `The ${what} ${JSON.stringify(ref)} is not a Weave object or op ref (weave:///<entity>/<project>/object|op/<name>:<digest>).`,
    );
  }
  const [, entity, project, kind, name, digest] = match as unknown as [string, string, string, string, string, string];
  return { entity, project, kind, name, digest };
}

/** A UUID (version 8, RFC 9562 "custom") derived from a key: same key, same id. */
export function deterministicCallId(key: string): string {
  const bytes = crypto.createHash('sha256').update(key).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The source text weft stores for one of its ops: what ran, not a JavaScript body (the pipeline runs in activities). */
function opSource(name: string): string {
  return `// weft pipeline op ${name}: runs as Temporal activities of the evaluate workflow (workflows/, activities/).\n`;
}

/** An op object as the SDK saves one: the code as a file, the op as a CustomWeaveType pointing at it. */
export function opObject(entity: string, project: string, name: string, source: string = opSource(name)): OpObject {
  const value = {
    _type: 'CustomWeaveType',
    weave_type: { type: 'Op' },
    files: { 'obj.py': bytesDigest(Buffer.from(source, 'utf8')) },
    load_op: 'NO_LOAD_OP',
  };
  const digest = objectDigest(value);
  return { entity, project, name, value, source, digest, ref: `weave:///${entity}/${project}/op/${name}:${digest}` };
}

/**
 * weft's `Evaluation.evaluate` and `Evaluation.predictAndScore` ops for a project, and with a model object's name
 * its `<ModelName>.predict` op. publishEvaluationOps stores the ones a context's calls name.
 */
export function evaluationOpObjects(
  entity: string,
  project: string,
  modelName?: string,
): { evaluate: OpObject; predictAndScore: OpObject; predict?: OpObject } {
  return {
    evaluate: opObject(entity, project, 'Evaluation.evaluate'),
    predictAndScore: opObject(entity, project, 'Evaluation.predictAndScore'),
    ...(modelName === undefined ? {} : { predict: opObject(entity, project, `${modelName}.predict`) }),
  };
}

/** Stores an op as the SDK does: its source as a file, then the op object (same name and digest as `op.ref`). */
export async function publishOpObject(store: LineageStore, op: OpObject): Promise<string> {
  const scope = { entity: op.entity, project: op.project };
  await store.files.put(Buffer.from(op.source, 'utf8'), scope);
  const published = await store.objects.publish({ ...scope, name: op.name, value: op.value, acceptWeaveSdkRefs: true });
  return `weave:///${op.entity}/${op.project}/op/${op.name}:${published.digest}`;
}

/**
 * Publishes the weft ops an evaluation's calls name by default (evaluate, predictAndScore and, for an object
 * model without predictOpRef, its predict op), so every op ref in the trace resolves. Idempotent.
 */
export async function publishEvaluationOps(store: LineageStore, context: EvaluationCallContext): Promise<string[]> {
  const evaluation = parseWeaveRef(context.evaluationRef, 'evaluation ref');
  const model = parseWeaveRef(context.modelRef, 'model ref');
  const ops = evaluationOpObjects(
    evaluation.entity,
    evaluation.project,
    model.kind === 'object' && context.predictOpRef === undefined ? model.name : undefined,
  );
  const wanted = [
    ...(context.opRefs?.evaluate === undefined ? [ops.evaluate] : []),
    ...(context.opRefs?.predictAndScore === undefined ? [ops.predictAndScore] : []),
    ...(ops.predict ? [ops.predict] : []),
  ];
  const refs: string[] = [];
  for (const op of wanted) refs.push(await publishOpObject(store, op));
  return refs;
}

function resolvedContext(context: EvaluationCallContext) {
  const evaluation = parseWeaveRef(context.evaluationRef, 'evaluation ref');
  parseWeaveRef(context.datasetRef, 'dataset ref');
  const model = parseWeaveRef(context.modelRef, 'model ref');
  const scorers = context.scorerRefs.map((ref) => ({ ref, name: parseWeaveRef(ref, 'scorer ref').name }));
  const ops = evaluationOpObjects(evaluation.entity, evaluation.project, model.name);
  const predictOpRef = model.kind === 'op' ? context.modelRef : (context.predictOpRef ?? ops.predict!.ref);
  const attributes: Record<string, CallAttributeValue> = {
    weave: { client_version: WEAVE_SDK_VERSION, source: context.source ?? 'weft' },
    ...(context.attributes ?? {}),
    'workflow-id': context.workflowId,
    ...(context.wandbRunId === undefined ? {} : { 'wandb-run-id': context.wandbRunId }),
  };
  return {
    entity: evaluation.entity,
    project: evaluation.project,
    evaluationName: evaluation.name,
    model,
    scorers,
    predictOpRef,
    attributes,
    evaluateOpRef: context.opRefs?.evaluate ?? ops.evaluate.ref,
    predictAndScoreOpRef: context.opRefs?.predictAndScore ?? ops.predictAndScore.ref,
    traceId: deterministicCallId(`${context.workflowId}|trace|${context.evaluationRef}|${context.modelRef}`),
    evaluateCallId: deterministicCallId(`${context.workflowId}|evaluate|${context.evaluationRef}|${context.modelRef}`),
  };
}

/** The ids an evaluation's calls get: the trace, the root evaluate call, and per row the predict_and_score call. */
export function evaluationCallIds(
  context: EvaluationCallContext,
  rowIndex?: number,
): { traceId: string; evaluateCallId: string; predictAndScoreCallId?: string } {
  const resolved = resolvedContext(context);
  return {
    traceId: resolved.traceId,
    evaluateCallId: resolved.evaluateCallId,
    ...(rowIndex === undefined
      ? {}
      : { predictAndScoreCallId: deterministicCallId(`${resolved.evaluateCallId}|row|${rowIndex}`) }),
  };
}

/**
 * The root `Evaluation.evaluate` call. Upsert it once at the start (without `summary`: running) and again at the
 * end with the summary (summarizeEvaluation of the row results) as its output.
 */
export function evaluateCall(
  context: EvaluationCallContext,
  timing: { startedAt: string; endedAt?: string; summary?: Record<string, unknown>; exception?: string },
): CallInput {
  const resolved = resolvedContext(context);
  // The SDK names the call "<evaluation name>_<model op name or object id>".
  const modelName = resolved.model.name;
  return {
    entity: resolved.entity,
    project: resolved.project,
    id: resolved.evaluateCallId,
    opName: resolved.evaluateOpRef,
    displayName: `${resolved.evaluationName}_${modelName}`,
    traceId: resolved.traceId,
    startedAt: timing.startedAt,
    ...(timing.endedAt === undefined ? {} : { endedAt: timing.endedAt }),
    inputs: { self: context.evaluationRef, model: context.modelRef },
    ...(timing.summary === undefined ? {} : { output: timing.summary }),
    ...(timing.exception === undefined ? {} : { exception: timing.exception }),
    attributes: resolved.attributes,
    summary: {},
  };
}

function seconds(from: string, to: string): number {
  return (Date.parse(to) - Date.parse(from)) / 1000;
}

/**
 * One row's calls: `Evaluation.predictAndScore`, its model call and one call per scorer that produced a score,
 * parented as the SDK does. Upsert them in order (parents first).
 */
export function rowEvaluationCalls(context: EvaluationCallContext, result: RowEvaluation): CallInput[] {
  const resolved = resolvedContext(context);
  const scope = { entity: resolved.entity, project: resolved.project };
  const predictAndScoreId = deterministicCallId(`${resolved.evaluateCallId}|row|${result.rowIndex}`);
  const exampleRef = `${context.datasetRef}/attr/rows/id/${rowDigest(result.row)}`;
  const predictedAt = result.predictedAt ?? result.startedAt;
  const modelSucceeded = result.modelError === undefined;
  const scores: Record<string, unknown> = {};
  if (modelSucceeded) for (const scorer of resolved.scorers) scores[scorer.name] = result.scores[scorer.name];
  const calls: CallInput[] = [
    {
      ...scope,
      id: predictAndScoreId,
      opName: resolved.predictAndScoreOpRef,
      traceId: resolved.traceId,
      parentId: resolved.evaluateCallId,
      startedAt: result.startedAt,
      endedAt: result.endedAt,
      inputs: { self: context.evaluationRef, model: context.modelRef, example: exampleRef },
      output: {
        model_success: modelSucceeded,
        model_output: modelSucceeded ? (result.prediction ?? null) : null,
        scores,
        model_latency: seconds(result.startedAt, predictedAt),
      },
      attributes: resolved.attributes,
      summary: {},
    },
    {
      ...scope,
      id: deterministicCallId(`${predictAndScoreId}|model`),
      opName: resolved.predictOpRef,
      traceId: resolved.traceId,
      parentId: predictAndScoreId,
      startedAt: result.startedAt,
      endedAt: predictedAt,
      // An op model is called as op({datasetRow}); an object model's predict also gets the model as `self`.
      inputs:
        resolved.model.kind === 'op'
          ? { arg0: { datasetRow: exampleRef } }
          : { self: context.modelRef, arg0: { datasetRow: exampleRef } },
      ...(modelSucceeded ? { output: result.prediction ?? null } : { exception: result.modelError }),
      attributes: resolved.attributes,
      summary: {},
    },
  ];
  if (!modelSucceeded) return calls;
  resolved.scorers.forEach((scorer, index) => {
    if (result.scores[scorer.name] === undefined) return;
    calls.push({
      ...scope,
      id: deterministicCallId(`${predictAndScoreId}|scorer|${index}`),
      opName: scorer.ref,
      traceId: resolved.traceId,
      parentId: predictAndScoreId,
      startedAt: predictedAt,
      endedAt: result.endedAt,
      inputs: { arg0: { datasetRow: exampleRef, modelOutput: result.prediction ?? null } },
      output: result.scores[scorer.name],
      attributes: resolved.attributes,
      summary: {},
    });
  });
  return calls;
}

/** The per-row record the SDK summarizes: `{model_success, model_output, ...scores, model_latency}`. */
export function rowSummaryRecord(result: RowEvaluation): Record<string, unknown> {
  const succeeded = result.modelError === undefined;
  return {
    model_success: succeeded,
    model_output: succeeded ? (result.prediction ?? null) : null,
    ...(succeeded ? result.scores : {}),
    model_latency: seconds(result.startedAt, result.predictedAt ?? result.startedAt),
  };
}

function summarizeColumn(values: unknown[]): Record<string, number> {
  const present = values.filter((value) => value !== null && value !== undefined);
  if (present.length === 0) return {};
  if (present.every((value) => typeof value === 'boolean')) {
    const trueCount = present.filter(Boolean).length;
    return { true_count: trueCount, true_fraction: trueCount / values.length };
  }
  if (present.every((value) => typeof value === 'number')) {
    return { mean: (present as number[]).reduce((sum, value) => sum + value, 0) / values.length };
  }
  return {};
}

function summarizeRecords(records: unknown[]): Record<string, unknown> {
  const summary: Record<string, unknown> = {};
  const keys = new Set(records.flatMap((record) => Object.keys((record as Record<string, unknown>) ?? {})));
  for (const key of keys) {
    const values = records.map((record) =>
      record === null || record === undefined ? null : (record as Record<string, unknown>)[key],
    );
    const nested = values.some((value) => value !== null && typeof value === 'object' && !Array.isArray(value));
    const column = nested ? summarizeRecords(values) : summarizeColumn(values);
    if (Object.keys(column).length > 0) summary[key] = column;
  }
  return summary;
}

/**
 * The evaluate call's output, computed as the SDK's `summarizeResults` does: booleans → true_count/true_fraction,
 * numbers → mean (over all rows, missing counted as absent from the sum), nested records column by column.
 */
export function summarizeEvaluation(results: readonly RowEvaluation[]): Record<string, unknown> {
  return summarizeRecords(results.map(rowSummaryRecord));
}

/** The output of a recorded `Evaluation.predictAndScore` call (see rowEvaluationCalls). */
export interface PredictAndScoreOutput {
  model_success: boolean;
  model_output: unknown;
  scores: Record<string, unknown>;
  model_latency: number;
}

/**
 * The same summary as summarizeEvaluation, from the predict_and_score outputs already stored (what the pipeline has
 * when it finishes an evaluation): the SDK flattens each row's scores beside model_success and model_latency.
 */
export function summarizePredictAndScoreOutputs(outputs: readonly PredictAndScoreOutput[]): Record<string, unknown> {
  return summarizeRecords(
    outputs.map((output) => ({
      model_success: output.model_success,
      model_output: output.model_output,
      ...(output.model_success ? output.scores : {}),
      model_latency: output.model_latency,
    })),
  );
}
