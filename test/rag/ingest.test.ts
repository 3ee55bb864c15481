/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import fs from 'node:fs';
import path from 'node:path';
import { chunkDocument, InvalidCorpusError, logEmbeddingModel, readCorpus, type CorpusDocument } from '../../lib/rag';
import {
  builtModelsDirectory,
  demoDataDirectory,
  openRagTestHome,
  requireBuiltModels,
  type RagTestHome,
} from './rag-test-home';

const documents: CorpusDocument[] = [
  {
    id: 'glaciers',
    title: 'Glaciers',
    text: 'Mountain glaciers are retreating almost everywhere, and their meltwater raises the sea level.',
  },
  {
    id: 'kelp',
    title: 'Kelp forests',
    text: 'Kelp forests grow in cold, nutrient-rich coastal water and store carbon in their fronds.',
  },
  {
    id: 'monsoon',
    title: 'Monsoon',
    text: 'The monsoon brings most of South Asia its yearly rainfall between June and September.',
  },
];

describe('ingest', () => {
  let testHome: RagTestHome;
  let embeddingModelRef: string;

  beforeAll(async () => {
    requireBuiltModels();
    testHome = await openRagTestHome('ingest');
    embeddingModelRef = (await logEmbeddingModel(testHome.runtime, path.join(builtModelsDirectory, 'minilm', 'onnx')))
      .ref;
  });

  afterAll(async () => {
    await testHome?.close();
    if (testHome) fs.rmSync(testHome.home, { recursive: true, force: true });
  });

  it('cuts every demo document into one or two overlapping passages of about 120 words', () => {
    const corpus = readCorpus(path.join(demoDataDirectory, 'corpus.jsonl'));
    expect(corpus).toHaveLength(80);
    const counts = corpus.map((document) => chunkDocument(document).length);
    expect(Math.min(...counts)).toBe(1);
    expect(Math.max(...counts)).toBe(2);
    const long = corpus.find((document) => chunkDocument(document).length === 2)!;
    const [first, second] = chunkDocument(long);
    expect(first.text.split(' ')).toHaveLength(120);
    // The second passage starts 30 words before the first one ends.
    expect(first.text.endsWith(second.text.split(' ').slice(0, 30).join(' '))).toBe(true);
  });

  it('fills a new collection, then re-ingesting the same corpus embeds nothing and keeps the alias', async () => {
    const first = await testHome.runtime.ingest({ documents, alias: 'notes', embeddingModelRef });
    expect(first).toMatchObject({ alias: 'notes', points: 3, documents: 3, created: true, previousCollection: null });
    expect(first.collection).toMatch(/^notes-[0-9a-f]{16}$/);
    expect(await testHome.runtime.collectionContentVersion('notes')).toBe(first.contentVersion);

    const progress: number[] = [];
    const again = await testHome.runtime.ingest({
      documents: [...documents],
      alias: 'notes',
      embeddingModelRef,
      onProgress: ({ embeddedPassages }) => progress.push(embeddedPassages),
    });
    expect(again).toEqual({ ...first, created: false });
    expect(progress).toEqual([]);
    expect(await testHome.vectors.listCollections()).toEqual([first.collection]);
  });

  it('switches the alias to a new collection when the corpus changes, leaving the old one intact', async () => {
    const before = await testHome.runtime.ingest({ documents, alias: 'notes', embeddingModelRef });
    const changed = [
      ...documents.slice(0, 2),
      {
        id: 'permafrost',
        title: 'Permafrost',
        text: 'Thawing permafrost releases methane from frozen soils in the Arctic.',
      },
    ];
    const after = await testHome.runtime.ingest({ documents: changed, alias: 'notes', embeddingModelRef });
    expect(after.collection).not.toBe(before.collection);
    expect(after).toMatchObject({ created: true, previousCollection: before.collection, points: 3 });
    expect(after.contentVersion).not.toBe(before.contentVersion);
    expect((await testHome.vectors.getCollection('notes')).name).toBe(after.collection);
    expect(await testHome.vectors.count(before.collection)).toBe(3);

    // Going back to the first corpus reuses its complete collection: an atomic switch, nothing embedded.
    const back = await testHome.runtime.ingest({ documents, alias: 'notes', embeddingModelRef });
    expect(back).toMatchObject({ collection: before.collection, created: false, previousCollection: after.collection });
  });

  it('gives a RagModel a new cache identity when its collection alias moves to new content', async () => {
    const runtime = testHome.runtime;
    const chatArtifact = await testHome.store.artifacts.log({
      name: 'chat',
      type: 'model',
      files: [{ path: 'model.onnx', content: 'weights' }],
    });
    const chatModel = await runtime.publishChatModel({ modelArtifactRef: chatArtifact.ref });
    const prompt = await runtime.publishPrompt();
    const ragModel = await runtime.publishRagModel({
      chatModel: chatModel.ref,
      embeddingModel: embeddingModelRef,
      collectionAlias: 'cached',
      prompt: prompt.ref,
    });
    await runtime.ingest({ documents, alias: 'cached', embeddingModelRef });
    const before = await runtime.cacheIdentity(ragModel.ref);
    expect(before.sampled).toBe(false);
    expect(await runtime.cacheIdentity(ragModel.ref)).toEqual(before);
    await runtime.ingest({ documents: documents.slice(1), alias: 'cached', embeddingModelRef });
    expect((await runtime.cacheIdentity(ragModel.ref)).key).not.toBe(before.key);
  });

  it('refuses corpora it cannot ingest with a message that says what to fix', async () => {
    await expect(
      testHome.runtime.ingest({ documents: [documents[0], documents[0]], alias: 'notes', embeddingModelRef }),
    ).rejects.toThrow(
      new InvalidCorpusError(
        'The documents given to ingest, document 2 repeats the id "glaciers"; document ids must be unique.',
      ),
    );
    await expect(
      testHome.runtime.ingest({
        corpusPath: path.join(testHome.home, 'nowhere.jsonl'),
        alias: 'notes',
        embeddingModelRef,
      }),
    ).rejects.toThrow(/does not exist; pass a corpus.jsonl file or a folder of .jsonl, .md or .txt files/);
    await expect(testHome.runtime.ingest({ documents, alias: 'bad alias', embeddingModelRef })).rejects.toThrow(
      InvalidCorpusError,
    );
  });
});
