import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as weave from 'weave';
import { openLineageStore } from '../../lib/lineage';
import {
  evaluateCall,
  evaluationCallIds,
  evaluationOpObjects,
  publishEvaluationOps,
  rowEvaluationCalls,
  rowSummaryRecord,
  summarizeEvaluation,
  type EvaluationCallContext,
  type RowEvaluation,
} from '../../lib/evaluation';

const context: EvaluationCallContext = {
  evaluationRef: 'weave:///acme/app/object/nightly-eval:evalDigest1',
  datasetRef: 'weave:///acme/app/object/qa:datasetDigest1',
  modelRef: 'weave:///acme/app/object/RagModel:modelDigest1',
  scorerRefs: ['weave:///acme/app/op/exact_match:s1', 'weave:///acme/app/op/faithfulness:s2'],
  workflowId: 'evaluate-nightly-2026-01-01',
  wandbRunId: 'run-7',
};

const results: RowEvaluation[] = [
  {
    rowIndex: 0,
    row: { question: 'q0', answer: 'a0' },
    prediction: 'a0',
    scores: { exact_match: true, faithfulness: { score: 0.9, grounded: true } },
    startedAt: '2026-01-01T00:00:00.000Z',
    predictedAt: '2026-01-01T00:00:01.500Z',
    endedAt: '2026-01-01T00:00:02.000Z',
  },
  {
    rowIndex: 1,
    row: { question: 'q1', answer: 'a1' },
    prediction: 'wrong',
    scores: { exact_match: false, faithfulness: undefined },
    startedAt: '2026-01-01T00:00:00.000Z',
    predictedAt: '2026-01-01T00:00:00.500Z',
    endedAt: '2026-01-01T00:00:01.000Z',
  },
  {
    rowIndex: 2,
    row: { question: 'q2', answer: 'a2' },
    modelError: 'CUDA out of memory',
    scores: {},
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:00:03.000Z',
  },
];

describe('evaluation-calls: pipeline evaluations shaped like the weave SDK writes them', () => {
  it("summarizes exactly as the SDK's Evaluation.summarizeResults", () => {
    const sdkEvaluation = new weave.Evaluation({
      name: 'unused',
      dataset: new weave.Dataset({ name: 'unused', rows: [] }),
      scorers: [],
    }) as unknown as { summarizeResults(records: unknown[]): unknown };
    const expected = sdkEvaluation.summarizeResults(results.map(rowSummaryRecord));
    expect(summarizeEvaluation(results)).toEqual(expected);
    expect(summarizeEvaluation(results)).toMatchObject({
      model_success: { true_count: 2, true_fraction: 2 / 3 },
      exact_match: { true_count: 1, true_fraction: 1 / 3 },
      faithfulness: { score: { mean: 0.3 }, grounded: { true_count: 1 } },
      model_latency: { mean: (1.5 + 0.5 + 0) / 3 },
    });
  });

  it('gives the same ids on every retry, so upserts never duplicate a call', () => {
    const first = rowEvaluationCalls(context, results[0]!);
    const again = rowEvaluationCalls(context, results[0]!);
    expect(again.map((call) => call.id)).toEqual(first.map((call) => call.id));
    expect(new Set(first.map((call) => call.id)).size).toBe(first.length);
    const otherWorkflow = rowEvaluationCalls({ ...context, workflowId: 'evaluate-nightly-2026-01-02' }, results[0]!);
    expect(otherWorkflow[0]!.id).not.toBe(first[0]!.id);
    expect(first[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(evaluationCallIds(context, 0).predictAndScoreCallId).toBe(first[0]!.id);
  });

  it('nests model and scorer calls under predictAndScore under evaluate, with the run and workflow attributes', () => {
    const root = evaluateCall(context, { startedAt: '2026-01-01T00:00:00.000Z' });
    const ops = evaluationOpObjects('acme', 'app', 'RagModel');
    expect(root).toMatchObject({
      entity: 'acme',
      project: 'app',
      opName: ops.evaluate.ref,
      displayName: 'nightly-eval_RagModel',
      inputs: { self: context.evaluationRef, model: context.modelRef },
      attributes: {
        weave: { client_version: '0.11.1', source: 'weft' },
        'workflow-id': context.workflowId,
        'wandb-run-id': 'run-7',
      },
    });
    expect(root.endedAt).toBeUndefined();
    const [predictAndScore, model, exactMatch, faithfulness] = rowEvaluationCalls(context, results[0]!);
    expect(predictAndScore).toMatchObject({
      opName: ops.predictAndScore.ref,
      parentId: root.id,
      traceId: root.traceId,
      output: {
        model_success: true,
        model_output: 'a0',
        scores: { exact_match: true, faithfulness: { score: 0.9, grounded: true } },
        model_latency: 1.5,
      },
    });
    const example = (predictAndScore!.inputs as { example: string }).example;
    expect(example).toMatch(/^weave:\/\/\/acme\/app\/object\/qa:datasetDigest1\/attr\/rows\/id\/[A-Za-z0-9]+$/);
    expect(model).toMatchObject({
      opName: ops.predict!.ref,
      parentId: predictAndScore!.id,
      inputs: { self: context.modelRef, arg0: { datasetRow: example } },
      output: 'a0',
    });
    expect(exactMatch).toMatchObject({ opName: context.scorerRefs[0], output: true });
    expect(faithfulness).toMatchObject({ opName: context.scorerRefs[1], inputs: { arg0: { modelOutput: 'a0' } } });
  });

  it('records a failed model call with its error and no scorer calls, as the SDK does', () => {
    const calls = rowEvaluationCalls(context, results[2]!);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.output).toEqual({ model_success: false, model_output: null, scores: {}, model_latency: 0 });
    expect(calls[1]).toMatchObject({ exception: 'CUDA out of memory' });
    // A scorer that produced nothing has no call.
    expect(rowEvaluationCalls(context, results[1]!)).toHaveLength(3);
  });

  it('rejects refs that are not Weave object or op refs, naming the argument', () => {
    expect(() =>
      rowEvaluationCalls({ ...context, modelRef: 'wandb-artifact:///acme/app/model:v1' }, results[0]!),
    ).toThrow(/The model ref "wandb-artifact:\/\/\/acme\/app\/model:v1" is not a Weave object or op ref/);
  });

  it('publishes the ops its calls name, so every op ref in the trace resolves in the store', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-evaluation-ops-'));
    const store = await openLineageStore(`sqlite://${path.join(folder, 'lineage.db')}`);
    try {
      const published = await publishEvaluationOps(store, context);
      const calls = [
        evaluateCall(context, { startedAt: '2026-01-01T00:00:00.000Z' }),
        ...rowEvaluationCalls(context, results[0]!),
      ];
      const weftOps = [...new Set(calls.map((call) => call.opName))].filter((ref) => !context.scorerRefs.includes(ref));
      expect([...published].sort()).toEqual(weftOps.sort());
      for (const ref of published) {
        const objectRef = ref.replace('/op/', '/object/');
        expect((await store.objects.get(objectRef)).value).toMatchObject({
          _type: 'CustomWeaveType',
          weave_type: { type: 'Op' },
        });
      }
      // Publishing again changes nothing.
      expect((await publishEvaluationOps(store, context)).sort()).toEqual([...published].sort());
      expect(
        (await store.objects.list({ entity: 'acme', project: 'app' })).every((item) => item.versionCount === 1),
      ).toBe(true);
    } finally {
      await store.close();
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
