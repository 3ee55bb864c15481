/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { registerRagCommands } from '../../client/commands/rag-commands';
import {
  bootstrapDemoProject,
  closeRagInferenceResources,
  createRagRuntime,
  DemoModelsMissingError,
  EmptyQuestionError,
  InvalidModelArtifactError,
  type DemoProject,
  ragModelCollectionRef,
} from '../../lib/rag';
import {
  builtModelsDirectory,
  demoDataDirectory,
  openRagTestHome,
  requireBuiltModels,
  type RagTestHome,
} from './rag-test-home';

// loadConfig() reads the environment once per module registry: the CLI must see this home from its first command.
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rag-demo-'));
process.env.WEFT_HOME = home;
process.env.WEFT_LINEAGE_URL = `sqlite://${path.join(home, 'lineage.db')}`;
process.env.WEFT_MODELS_DIR = builtModelsDirectory;
// `weft ask` on an empty home sets the demo up with the tiny model (SmolLM2 has its own tests).
process.env.WEFT_DEMO_BASE_MODEL = 'base-chat';
delete process.env.WEFT_VECTOR_URL;

async function runWeft(...argv: string[]): Promise<string> {
  const program = new Command('weft').exitOverride();
  registerRagCommands(program);
  let output = '';
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    output += chunk.toString();
    return true;
  });
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'weft', ...argv]);
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
  return output;
}

interface QaRow {
  id: string;
  question: string;
  answer: string;
  doc_id: string;
}

const evaluationRows = fs
  .readFileSync(path.join(demoDataDirectory, 'qa-eval.jsonl'), 'utf8')
  .split('\n')
  .filter((line) => line.trim().length > 0)
  .map((line) => JSON.parse(line) as QaRow);

describe('the demo RAG app', () => {
  let testHome: RagTestHome;
  let bootstrapped: Promise<DemoProject> | undefined;
  /** The demo project, set up once for the tests that only use it (logging the models copies 100 MB). */
  const demoProject = (): Promise<DemoProject> =>
    (bootstrapped ??= bootstrapDemoProject(testHome.runtime, {
      dataDirectory: demoDataDirectory,
      modelsDirectory: builtModelsDirectory,
      baseModel: 'base-chat',
    }));

  beforeAll(async () => {
    requireBuiltModels();
    testHome = await openRagTestHome('demo', home);
  });

  afterAll(async () => {
    await testHome?.close();
    await closeRagInferenceResources();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('answers `weft ask` on an empty home by setting up the demo, citing the gold document', async () => {
    const row = evaluationRows[0];
    const printed = JSON.parse(await runWeft('ask', row.question, '--json')) as {
      answer: string;
      ragModelRef: string;
      sources: { documentId: string; title: string; score: number }[];
    };
    expect(printed.ragModelRef).toMatch(/^weave:\/\/\/weft\/rag-demo\/object\/RagModel:/);
    expect(printed.sources).toHaveLength(5);
    expect(printed.sources.map((source) => source.documentId)).toContain(row.doc_id);
    expect(typeof printed.answer).toBe('string');

    const text = await runWeft('ask', row.question);
    expect(text).toMatch(/sources\ndoc id\s+title\s+score/);
    expect(text).toContain(row.doc_id);
  });

  it('bootstraps idempotently: a second call returns the same refs and stores nothing new', async () => {
    const options = {
      dataDirectory: demoDataDirectory,
      modelsDirectory: builtModelsDirectory,
      baseModel: 'base-chat' as const,
    };
    const first = await bootstrapDemoProject(testHome.runtime, options);
    const counts = await testHome.store.counts();
    const second = await bootstrapDemoProject(testHome.runtime, options);
    expect(second).toEqual(first);
    expect(await testHome.store.counts()).toEqual(counts);
    expect(first).toMatchObject({
      baseModelArtifactRef: 'wandb-artifact:///weft/rag-demo/base-chat:v0',
      embeddingModelArtifactRef: 'wandb-artifact:///weft/rag-demo/all-MiniLM-L6-v2:v0',
      collectionAlias: 'climate-corpus',
    });
    expect((await testHome.store.objects.get(first.ragModelRef)).version).toBe(0);
    expect(await testHome.store.datasets.rows(first.evaluationDatasetRef, { limit: 1 })).toEqual([
      { id: 'ev-001', question: evaluationRows[0].question, answer: evaluationRows[0].answer, doc_id: 'doc-001' },
    ]);
    const evaluation = await testHome.runtime.resolveEvaluation(first.evaluationRef);
    expect(evaluation.evaluation).toEqual({
      dataset: first.evaluationDatasetRef,
      scorers: ['exact_match', 'f1', 'hit@5', 'mrr', 'groundedness', 'latency_ms'],
    });
    const artifact = await testHome.store.artifacts.get(first.baseModelArtifactRef);
    expect(artifact).toMatchObject({
      type: 'model',
      metadata: { built_by: 'setup', architecture: 'LlamaForCausalLM' },
    });
  });

  it('predicts a batch: answers with the gold document among the top five for most eval questions', async () => {
    const demo = await demoProject();
    const rows = evaluationRows.slice(0, 10);
    const predictions = await testHome.runtime.predict(
      demo.ragModelRef,
      rows.map((row) => row.question),
    );
    expect(predictions).toHaveLength(10);
    const hits = predictions.filter((prediction, index) =>
      prediction.contexts.slice(0, 5).some((context) => context.documentId === rows[index].doc_id),
    ).length;
    expect(hits / rows.length).toBeGreaterThanOrEqual(0.8);
    for (const prediction of predictions) {
      expect(prediction.contexts).toHaveLength(5);
      expect(new Set(prediction.contexts.map((context) => context.documentId)).size).toBe(5);
      expect(prediction.contexts[0]).toEqual({
        documentId: expect.stringMatching(/^doc-\d{3}$/),
        title: expect.any(String),
        text: expect.any(String),
        score: expect.any(Number),
      });
      expect(prediction.promptTokens).toBeGreaterThan(0);
      expect(prediction.completionTokens).toBeGreaterThan(0);
      expect(prediction.completionTokens).toBeLessThanOrEqual(24);
      expect(prediction.timings.totalMilliseconds).toBeGreaterThanOrEqual(prediction.timings.generationMilliseconds);
    }
    // Greedy decoding: the same question gets the same answer alone, in a batch, or sharing forward passes with
    // another predict call of the process.
    const [alone] = await testHome.runtime.predict(demo.ragModelRef, [rows[3].question]);
    expect(alone.answer).toBe(predictions[3].answer);
    const [left, right] = await Promise.all([
      testHome.runtime.predict(demo.ragModelRef, [rows[0].question, rows[1].question]),
      testHome.runtime.predict(demo.ragModelRef, [rows[2].question]),
    ]);
    expect([...left, ...right].map((prediction) => prediction.answer)).toEqual(
      predictions.slice(0, 3).map((prediction) => prediction.answer),
    );
  });

  it('keeps model folders in a per-digest cache under WEFT_HOME and fetches an altered copy again', async () => {
    const demo = await demoProject();
    const artifact = await testHome.store.artifacts.get(demo.baseModelArtifactRef);
    const cached = path.join(home, 'cache', 'models', artifact.digest);
    const original = fs.readFileSync(path.join(builtModelsDirectory, 'base-chat', 'onnx', 'tokenizer.json'));
    expect(fs.readFileSync(path.join(cached, 'tokenizer.json'))).toEqual(original);

    fs.writeFileSync(path.join(cached, 'tokenizer.json'), '{}');
    // A new runtime stands for a new process: it checks the cached copy before using it.
    const runtime = createRagRuntime({ store: testHome.store, vectors: testHome.vectors, config: testHome.config });
    const [prediction] = await runtime.predict(demo.ragModelRef, [evaluationRows[0].question]);
    expect(prediction.contexts).toHaveLength(5);
    expect(fs.readFileSync(path.join(cached, 'tokenizer.json'))).toEqual(original);
  });

  it('ingests a folder of Markdown notes with `weft ingest`, and a second run embeds nothing', async () => {
    const notes = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rag-notes-'));
    try {
      fs.writeFileSync(path.join(notes, 'peat.md'), '# Peatlands\nPeatlands store a third of soil carbon.\n');
      fs.writeFileSync(path.join(notes, 'coral.txt'), 'Coral reefs bleach when the sea is too warm for too long.');
      const first = JSON.parse(await runWeft('ingest', notes, '--alias', 'notes', '--json')) as {
        collection: string;
        points: number;
        created: boolean;
      };
      expect(first).toMatchObject({ alias: 'notes', documents: 2, points: 2, created: true });
      const second = JSON.parse(await runWeft('ingest', notes, '--alias', 'notes', '--json')) as typeof first;
      expect(second).toMatchObject({ collection: first.collection, created: false });
      const text = await runWeft('ingest', notes, '--alias', 'notes');
      expect(text).toContain(`${first.collection} already holds this corpus (2 passages); nothing embedded`);
    } finally {
      fs.rmSync(notes, { recursive: true, force: true });
    }
  });

  it('uses the `production` RAG Model of the registry when there is one', async () => {
    const demo = await demoProject();
    const shortAnswers = await testHome.runtime.publishChatModel({
      modelArtifactRef: demo.baseModelArtifactRef,
      generation: { temperature: 0, maxNewTokens: 4 },
    });
    const challenger = await testHome.runtime.withChatModel(demo.ragModelRef, shortAnswers.ref);
    const app = await testHome.store.artifacts.log({
      name: 'climate-rag',
      type: 'rag-model',
      metadata: { url: challenger.ref },
      references: [{ uri: challenger.ref, path: 'rag-model' }],
    });
    const collection = ragModelCollectionRef('weft', 'climate-rag');
    await testHome.store.registry.link({ artifact: app.ref, target: collection });
    await testHome.store.registry.moveAlias(collection, { alias: 'production', to: 'v0', expected: null });

    const question = evaluationRows[1].question;
    const byDefault = JSON.parse(await runWeft('ask', question, '--json')) as { ragModelRef: string };
    expect(byDefault.ragModelRef).toBe(challenger.ref);
    const byVersion = JSON.parse(await runWeft('ask', question, '--rag', 'RagModel:v0', '--json')) as {
      ragModelRef: string;
    };
    expect(byVersion.ragModelRef).toBe('weave:///weft/rag-demo/object/RagModel:v0');
    await expect(runWeft('ask', question, '--rag', 'staging')).rejects.toThrow(
      'No app in the "RAG Models" registry has a "staging" version; pass a RagModel ref (weave:///…/object/RagModel:<digest>) or RagModel:vN instead.',
    );
    await expect(runWeft('ask', question, '--rag', 'production', '--json')).resolves.toContain(challenger.ref);
  });

  it('rejects an empty question before touching any store', async () => {
    await expect(runWeft('ask', '   ')).rejects.toThrow(new EmptyQuestionError(0));
    await expect(testHome.runtime.predict('weave:///weft/rag-demo/object/RagModel:v0', ['What?', ''])).rejects.toThrow(
      'Question 1 is empty; every question needs at least one non-space character.',
    );
  });

  it('says to run setup when the model folders are missing', async () => {
    const emptyModels = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rag-no-models-'));
    try {
      const attempt = bootstrapDemoProject(testHome.runtime, {
        dataDirectory: demoDataDirectory,
        modelsDirectory: emptyModels,
        baseModel: 'base-chat',
      });
      await expect(attempt).rejects.toThrow(DemoModelsMissingError);
      await expect(attempt).rejects.toThrow(/base-chat\/onnx\/model.onnx is missing\. Run `bash scripts\/setup.sh`/);
    } finally {
      fs.rmSync(emptyModels, { recursive: true, force: true });
    }
  });

  it('refuses a ChatModel whose artifact holds no ONNX model, naming what is missing', async () => {
    const demo = await demoProject();
    const notAModel = await testHome.store.artifacts.log({
      name: 'notes',
      type: 'model',
      files: [{ path: 'README.md', content: 'not weights' }],
    });
    const chatModel = await testHome.runtime.publishChatModel({ modelArtifactRef: notAModel.ref });
    const broken = await testHome.runtime.withChatModel(demo.ragModelRef, chatModel.ref);
    const attempt = testHome.runtime.predict(broken.ref, ['What is the greenhouse effect?']);
    await expect(attempt).rejects.toThrow(InvalidModelArtifactError);
    await expect(attempt).rejects.toThrow(
      /has no model.onnx, tokenizer.json; a model artifact holds an ONNX model folder/,
    );
  });
});
