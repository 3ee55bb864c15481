import crypto from 'node:crypto';
import path from 'node:path';
import * as weave from 'weave';
import type { CallRecord, ObjectSummary, ObjectVersion } from '../../lib/lineage';
import {
  evaluateCall,
  rowEvaluationCalls,
  summarizeEvaluation,
  type EvaluationCallContext,
  type RowEvaluation,
} from '../../lib/evaluation';
import { BACKENDS } from '../lineage/support/test-backends';
import { parseCliJson, pointWeaveAt, startFixture, type WeaveServerFixture } from './support/weave-server-fixture';

/** The weave SDK's own digest functions (not in its public exports, so loaded by path). */
interface WeaveDigestModule {
  computeDigest(data: Buffer): string;
  valDigest(value: unknown): string;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- weave does not export dist/digest.js, so it is loaded by path
const sdkDigest = require(path.join(__dirname, '../../node_modules/weave/dist/digest.js')) as WeaveDigestModule;

const ENTITY = 'acme';
const PROJECT = 'rag-app';
const scope = ['--entity', ENTITY, '--project', PROJECT, '--json'];

/** What the SDK saves for an op: its code as a file, the op as a CustomWeaveType naming that file's digest. */
function expectedOpDigest(fn: (...args: never[]) => unknown): string {
  return sdkDigest.valDigest({
    _type: 'CustomWeaveType',
    weave_type: { type: 'Op' },
    files: { 'obj.py': sdkDigest.computeDigest(Buffer.from(fn.toString())) },
    load_op: 'NO_LOAD_OP',
  });
}

async function opRef(op: unknown): Promise<string> {
  const saved = (op as { __savedRef?: Promise<{ uri(): string }> }).__savedRef;
  if (!saved) throw new Error('the op was never saved');
  return (await saved).uri();
}

function tableDigestOf(rows: Record<string, unknown>[]): string {
  return crypto
    .createHash('sha256')
    .update(rows.map((row) => sdkDigest.valDigest(row)).join(''))
    .digest('hex');
}

describe.each(BACKENDS)('the official weave SDK recording into weft serve on %s', (backend) => {
  let fixture: WeaveServerFixture;
  let client: weave.WeaveClient;
  let restoreEnvironment = (): void => undefined;

  beforeAll(async () => {
    fixture = await startFixture(backend);
    // The SDK reports progress with console.log; the test output stays readable without it.
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
    restoreEnvironment = pointWeaveAt(fixture.server.url);
    client = await weave.init(`${ENTITY}/${PROJECT}`);
  });

  afterAll(async () => {
    await client?.waitForBatchProcessing();
    await fixture?.dispose();
    restoreEnvironment();
    jest.restoreAllMocks();
  });

  it('records nested op calls with their attributes and exceptions, as `weft calls ls` shows', async () => {
    async function retrieveFunction(question: string): Promise<string[]> {
      return [`a document about ${question}`];
    }
    const retrieve = weave.op(retrieveFunction);
    const answer = weave.op(async function answerFunction(question: string) {
      const documents = await retrieve(question);
      return `${documents[0]}.`;
    });
    const explode = weave.op(async function explodeFunction(reason: string): Promise<never> {
      throw new Error(`exploded: ${reason}`);
    });
    await weave.withAttributes({ 'wandb-run-id': 'run-42', tenant: 'blue' }, async () => {
      expect(await answer('weft')).toBe('a document about weft.');
      await expect(explode('on purpose')).rejects.toThrow('exploded: on purpose');
    });
    await client.waitForBatchProcessing();

    const calls = parseCliJson<CallRecord[]>(
      await fixture.weft(['calls', 'ls', '--attr', 'wandb-run-id=run-42', ...scope]),
    );
    expect(calls).toHaveLength(3);
    const answerCall = calls.find((call) => call.opName === answerRefOf(calls, 'answerFunction'))!;
    const retrieveCall = calls.find((call) => call.opName.includes('/op/retrieveFunction:'))!;
    const explodeCall = calls.find((call) => call.opName.includes('/op/explodeFunction:'))!;

    // The op refs the SDK holds are the ones the calls name, under the digest the SDK's own algorithm gives.
    expect(retrieveCall.opName).toBe(await opRef(retrieve));
    expect(retrieveCall.opName).toBe(
      `weave:///${ENTITY}/${PROJECT}/op/retrieveFunction:${expectedOpDigest(retrieveFunction)}`,
    );
    expect(answerCall.opName).toBe(await opRef(answer));

    expect(answerCall).toMatchObject({ parentId: null, inputs: { arg0: 'weft' }, output: 'a document about weft.' });
    expect(retrieveCall).toMatchObject({
      parentId: answerCall.id,
      traceId: answerCall.traceId,
      inputs: { arg0: 'weft' },
      output: ['a document about weft'],
    });
    expect(explodeCall).toMatchObject({ exception: 'exploded: on purpose', output: null });
    expect(explodeCall.endedAt).not.toBeNull();
    for (const call of calls) {
      expect(call.attributes).toEqual({
        weave: { client_version: '0.11.1', source: 'js-sdk' },
        'wandb-run-id': 'run-42',
        tenant: 'blue',
      });
    }
    // Nested attributes are queryable by their dotted path.
    const byTenant = parseCliJson<CallRecord[]>(
      await fixture.weft(['calls', 'ls', '--attr', 'tenant=blue', '--attr', 'weave.source=js-sdk', ...scope]),
    );
    expect(byTenant.map((call) => call.id).sort()).toEqual(calls.map((call) => call.id).sort());

    // The SDK reads its calls back through calls/stream_query.
    const [readBack] = await client.getCalls({ call_ids: [explodeCall.id] });
    expect(readBack).toMatchObject({ id: explodeCall.id, exception: 'exploded: on purpose' });
  });

  it('publishes objects with nested refs under the SDK digests and gets them back', async () => {
    const prompt = new weave.StringPrompt({ name: 'answer-prompt', content: 'Answer briefly: {question}' });
    class ChatSettings extends weave.WeaveObject {
      constructor(
        readonly temperature: number,
        readonly prompt: weave.StringPrompt,
      ) {
        super({ name: 'chat-settings', description: 'generation settings' });
      }
    }
    const settings = new ChatSettings(0.2, prompt);
    const settingsRef = await client.publish(settings);
    const promptRef = await (prompt as unknown as { __savedRef: Promise<weave.ObjectRef> }).__savedRef;

    const expectedPrompt = {
      _type: 'StringPrompt',
      _class_name: 'StringPrompt',
      _bases: ['Prompt', 'Object', 'BaseModel'],
      name: 'answer-prompt',
      content: 'Answer briefly: {question}',
    };
    expect(promptRef.uri()).toBe(
      `weave:///${ENTITY}/${PROJECT}/object/answer-prompt:${sdkDigest.valDigest(expectedPrompt)}`,
    );
    const expectedSettings = {
      _type: 'ChatSettings',
      _class_name: 'ChatSettings',
      _bases: ['Object', 'BaseModel'],
      name: 'chat-settings',
      description: 'generation settings',
      temperature: 0.2,
      prompt: promptRef.uri(),
    };
    expect(settingsRef.uri()).toBe(
      `weave:///${ENTITY}/${PROJECT}/object/chat-settings:${sdkDigest.valDigest(expectedSettings)}`,
    );

    // An arbitrary value holding a saved WeaveObject: stored with the nested object as its ref.
    const bundleRef = await client.publish({ settings, tags: ['a', 'b'] }, 'bundle');
    expect(bundleRef.uri()).toBe(
      `weave:///${ENTITY}/${PROJECT}/object/bundle:${sdkDigest.valDigest({ settings: settingsRef.uri(), tags: ['a', 'b'] })}`,
    );

    expect(await settingsRef.get()).toEqual(expectedSettings);
    const listed = parseCliJson<ObjectSummary[]>(await fixture.weft(['objects', 'ls', ...scope]));
    const latestRefs = listed.map((item) => item.latestRef);
    expect(latestRefs).toEqual(expect.arrayContaining([promptRef.uri(), settingsRef.uri(), bundleRef.uri()]));
    const shown = parseCliJson<ObjectVersion>(await fixture.weft(['objects', 'show', settingsRef.uri(), '--json']));
    expect(shown).toMatchObject({ ref: settingsRef.uri(), version: 0, value: expectedSettings });

    // Publishing the same value again is the same version, not a new one.
    const again = await client.publish(new ChatSettings(0.2, prompt));
    expect(again.uri()).toBe(settingsRef.uri());
  });

  it('saves a Dataset of 1,000 rows under the SDK digest and loads every row back', async () => {
    const rows = Array.from({ length: 1000 }, (_, index) => ({
      id: index,
      question: `What is fact number ${index}?`,
      answer: `Fact ${index}.`,
    }));
    // The SDK attaches row refs to the row objects it is given: it gets copies, the test keeps the originals.
    const dataset = new weave.Dataset({ name: 'facts', rows: structuredClone(rows) });
    const datasetRef = await dataset.save();
    const tableRef = `weave:///${ENTITY}/${PROJECT}/table/${tableDigestOf(rows)}`;
    const expectedValue = {
      _type: 'Dataset',
      _class_name: 'Dataset',
      _bases: ['Object', 'BaseModel'],
      name: 'facts',
      rows: tableRef,
    };
    expect(datasetRef.uri()).toBe(`weave:///${ENTITY}/${PROJECT}/object/facts:${sdkDigest.valDigest(expectedValue)}`);

    const loaded = (await datasetRef.get()) as weave.Dataset<Record<string, unknown>>;
    expect(loaded.length).toBe(1000);
    expect(loaded.getRow(999)).toMatchObject(rows[999]!);

    const shown = parseCliJson<ObjectVersion>(await fixture.weft(['objects', 'show', datasetRef.uri(), '--json']));
    expect(shown.value).toEqual(expectedValue);
    expect((await fixture.store.tables.rows(tableRef, { offset: 500, limit: 1 }))[0]!.value).toEqual(rows[500]);
  });

  it('records Evaluation.evaluate with two scorers, and evaluation-calls builds the same trace', async () => {
    const rows = [
      { question: 'capital of France?', expected: 'Paris' },
      { question: 'capital of Italy?', expected: 'Rome' },
      { question: 'capital of Spain?', expected: 'Madrid' },
      { question: 'capital of Chad?', expected: "N'Djamena" },
    ];
    const dataset = new weave.Dataset({ name: 'capitals', rows: structuredClone(rows) });
    const model = weave.op(async function capitalModel({ datasetRow }: { datasetRow: { question: string } }) {
      return datasetRow.question.includes('France') || datasetRow.question.includes('Chad') ? 'Paris' : 'Rome';
    });
    const exactMatch = weave.op(async function exactMatch({
      datasetRow,
      modelOutput,
    }: {
      datasetRow: { expected: string };
      modelOutput: string;
    }) {
      return modelOutput === datasetRow.expected;
    });
    const answerLength = weave.op(async function answerLength({ modelOutput }: { modelOutput: string }) {
      return { characters: modelOutput.length };
    });
    const evaluation = new weave.Evaluation({ name: 'capitals-eval', dataset, scorers: [exactMatch, answerLength] });
    const summary = await evaluation.evaluate({ model });
    expect(summary).toMatchObject({
      model_success: { true_count: 4, true_fraction: 1 },
      exactMatch: { true_count: 2, true_fraction: 0.5 },
      answerLength: { characters: { mean: 4.5 } },
    });
    await client.waitForBatchProcessing();

    const evaluateOpRef = await opRef(evaluation.evaluate);
    const [evaluateRecord] = parseCliJson<CallRecord[]>(
      await fixture.weft(['calls', 'ls', '--op', evaluateOpRef, ...scope]),
    );
    expect(evaluateRecord).toMatchObject({ displayName: 'capitals-eval_capitalModel', output: summary });
    const trace = parseCliJson<CallRecord[]>(
      await fixture.weft(['calls', 'ls', '--trace', evaluateRecord!.traceId, ...scope]),
    );
    expect(trace).toHaveLength(1 + 4 * 4);
    const children = (parent: CallRecord) => trace.filter((call) => call.parentId === parent.id);
    const rowCalls = children(evaluateRecord!);
    expect(rowCalls).toHaveLength(4);
    for (const rowCall of rowCalls) expect(children(rowCall)).toHaveLength(3);

    // The same evaluation written by weft's builders has the SDK's op names, inputs, outputs and structure.
    const datasetRef = (await (dataset as unknown as { __savedRef: Promise<weave.ObjectRef> }).__savedRef).uri();
    const context: EvaluationCallContext = {
      evaluationRef: evaluateRecord!.inputs.self as string,
      datasetRef,
      modelRef: await opRef(model),
      scorerRefs: [await opRef(exactMatch), await opRef(answerLength)],
      workflowId: 'evaluate-capitals-1',
      opRefs: { evaluate: evaluateOpRef, predictAndScore: rowCalls[0]!.opName },
      source: 'js-sdk',
    };
    const results: RowEvaluation[] = rowCalls.map((rowCall) => {
      const output = rowCall.output as { model_output: string; scores: Record<string, unknown> };
      const row = rows.find(
        (candidate) => rowCall.inputs.example === `${datasetRef}/attr/rows/id/${sdkDigest.valDigest(candidate)}`,
      )!;
      return {
        rowIndex: rows.indexOf(row),
        row,
        prediction: output.model_output,
        scores: output.scores,
        startedAt: rowCall.startedAt,
        predictedAt: rowCall.startedAt,
        endedAt: rowCall.endedAt!,
      };
    });
    const built = [
      evaluateCall(context, {
        startedAt: evaluateRecord!.startedAt,
        endedAt: evaluateRecord!.endedAt!,
        summary: summarizeEvaluation(results),
      }),
      ...results.flatMap((result) => rowEvaluationCalls(context, result)),
    ];
    const shape = (call: {
      opName: string;
      displayName?: string | null;
      inputs?: Record<string, unknown>;
      output?: unknown;
      attributes?: Record<string, unknown>;
    }) => {
      const { 'workflow-id': _workflow, ...attributes } = call.attributes ?? {};
      const output =
        call.output !== null && typeof call.output === 'object' && 'model_latency' in call.output
          ? { ...call.output, model_latency: 'latency' }
          : call.output;
      return { opName: call.opName, displayName: call.displayName ?? null, inputs: call.inputs, output, attributes };
    };
    // Latency is a measurement, not a shape: compare every field but it.
    const withoutLatency = (value: unknown) =>
      JSON.parse(JSON.stringify(value, (key, item) => (key === 'model_latency' ? 'latency' : item)));
    expect(withoutLatency(built.map(shape)).sort(byJson)).toEqual(withoutLatency(trace.map(shape)).sort(byJson));
    const builtRoot = built[0]!;
    for (const call of built.slice(1)) expect(call.traceId).toBe(builtRoot.traceId);
    expect(built.filter((call) => call.parentId === builtRoot.id)).toHaveLength(4);

    // Upserted into the store (as the pipeline does), the built trace is listed like any other.
    for (const call of built) await fixture.store.calls.upsert(call);
    const pipelineCalls = parseCliJson<CallRecord[]>(
      await fixture.weft(['calls', 'ls', '--attr', 'workflow-id=evaluate-capitals-1', ...scope]),
    );
    expect(pipelineCalls).toHaveLength(17);
  });
});

function answerRefOf(calls: CallRecord[], name: string): string | undefined {
  return calls.find((call) => call.opName.includes(`/op/${name}:`))?.opName;
}

function byJson(left: unknown, right: unknown): number {
  const a = JSON.stringify(left);
  const b = JSON.stringify(right);
  return a < b ? -1 : a > b ? 1 : 0;
}
