import fs from 'node:fs';
import { objectDigest } from '../../lib/lineage';
import { ragMessages } from '../../lib/inference';
import {
  chatModelValue,
  CollectionAliasMissingError,
  defaultRagPrompt,
  InvalidAppObjectError,
  InvalidAppObjectInputError,
  RagModelNotFoundError,
  renderPrompt,
  type RagRuntime,
} from '../../lib/rag';
import { openRagTestHome, type RagTestHome } from './rag-test-home';

describe('RAG app objects', () => {
  let testHome: RagTestHome;
  let runtime: RagRuntime;
  let modelRef: string;
  let fineTunedRef: string;
  let embeddingRef: string;
  let datasetRef: string;

  beforeAll(async () => {
    testHome = await openRagTestHome('objects');
    runtime = testHome.runtime;
    const store = testHome.store;
    // Objects only hold artifact refs; these tests never load the weights.
    modelRef = (
      await store.artifacts.log({ name: 'chat', type: 'model', files: [{ path: 'model.onnx', content: 'a' }] })
    ).ref;
    fineTunedRef = (
      await store.artifacts.log({ name: 'chat', type: 'model', files: [{ path: 'model.onnx', content: 'b' }] })
    ).ref;
    embeddingRef = (
      await store.artifacts.log({
        name: 'embedder',
        type: 'embedding-model',
        files: [{ path: 'model.onnx', content: 'e' }],
      })
    ).ref;
    datasetRef = (
      await store.datasets.publish({ name: 'qa', rows: [{ id: 'q1', question: 'Q?', answer: 'A', doc_id: 'd1' }] })
    ).ref;
  });

  afterAll(async () => {
    await testHome.close();
    fs.rmSync(testHome.home, { recursive: true, force: true });
  });

  async function publishApp(chatArtifactRef = modelRef) {
    const chatModel = await runtime.publishChatModel({
      modelArtifactRef: chatArtifactRef,
      generation: { temperature: 0, maxNewTokens: 24 },
    });
    const prompt = await runtime.publishPrompt();
    const ragModel = await runtime.publishRagModel({
      chatModel: chatModel.ref,
      embeddingModel: embeddingRef,
      collectionAlias: 'docs',
      prompt: prompt.ref,
      retrieval: { topK: 5, hybrid: true, passagesInPrompt: 1 },
    });
    return { chatModel, prompt, ragModel };
  }

  it('stores typed objects the way the weave SDK does, with a digest that depends only on the value', async () => {
    const first = await publishApp();
    const stored = await testHome.store.objects.get(first.chatModel.ref);
    expect(stored.value).toEqual({
      _type: 'ChatModel',
      _class_name: 'ChatModel',
      _bases: ['Model', 'Object', 'BaseModel'],
      name: 'ChatModel',
      description: null,
      model_artifact_ref: 'wandb-artifact:///weft/rag-demo/chat:v0',
      generation: { temperature: 0, min_p: 0, top_p: 1, max_new_tokens: 24, seed: null },
      device: 'auto',
    });
    expect(first.chatModel.digest).toBe(objectDigest(stored.value));
    expect((await testHome.store.objects.get(first.ragModel.ref)).value).toMatchObject({
      _type: 'RagModel',
      _bases: ['Model', 'Object', 'BaseModel'],
      chat_model: first.chatModel.ref,
      prompt: first.prompt.ref,
      embedding_model: embeddingRef,
      retrieval: { top_k: 5, hybrid: true, passages_in_prompt: 1 },
    });

    const again = await publishApp();
    expect(again.chatModel).toEqual({ ...first.chatModel, created: false });
    expect(again.ragModel).toEqual({ ...first.ragModel, created: false });
    expect(again.ragModel.version).toBe(0);
  });

  it('pins refs given by alias or version, so the same parts give the same RagModel digest', async () => {
    const byDigest = await publishApp();
    const chatModelVersion = `${byDigest.chatModel.ref.split(':').slice(0, -1).join(':')}:v${byDigest.chatModel.version}`;
    const byVersion = await runtime.publishRagModel({
      chatModel: chatModelVersion,
      embeddingModel: 'wandb-artifact:///weft/rag-demo/embedder:latest',
      collectionAlias: 'docs',
      prompt: 'weave:///weft/rag-demo/object/Prompt:latest',
      retrieval: { topK: 5, hybrid: true, passagesInPrompt: 1 },
    });
    expect(byVersion.ref).toBe(byDigest.ragModel.ref);
  });

  it('integrates a new ChatModel into a new RagModel version that keeps every other ref', async () => {
    const base = await publishApp();
    const fineTuned = await runtime.publishChatModel({
      modelArtifactRef: fineTunedRef,
      generation: { temperature: 0, maxNewTokens: 24 },
    });
    const integrated = await runtime.withChatModel(base.ragModel.ref, fineTuned.ref);
    expect(integrated.created).toBe(true);
    expect(integrated.ref).not.toBe(base.ragModel.ref);
    expect(integrated.version).toBe(base.ragModel.version + 1);

    const resolved = await runtime.resolveRagModel(integrated.ref);
    const original = await runtime.resolveRagModel(base.ragModel.ref);
    expect(resolved.ragModel).toEqual({ ...original.ragModel, chatModel: fineTuned.ref });
    expect(resolved.chatModel.modelArtifactRef).toBe('wandb-artifact:///weft/rag-demo/chat:v1');
    expect(resolved.prompt).toEqual(defaultRagPrompt());

    // A retried integrate step gets the same version back.
    expect(await runtime.withChatModel(base.ragModel.ref, fineTuned.ref)).toEqual({ ...integrated, created: false });
    // Swapping in the ChatModel it already has is no change at all.
    expect((await runtime.withChatModel(base.ragModel.ref, base.chatModel.ref)).ref).toBe(base.ragModel.ref);
  });

  it('integrates a model artifact with the base ChatModel’s generation settings, idempotently', async () => {
    const base = await publishApp();
    const integrated = await runtime.integrateChatModel(base.ragModel.ref, fineTunedRef);
    const resolved = await runtime.resolveRagModel(integrated.ragModelRef);
    expect(resolved.ragModel.chatModel).toBe(integrated.chatModelRef);
    expect(resolved.chatModel).toEqual({
      modelArtifactRef: 'wandb-artifact:///weft/rag-demo/chat:v1',
      generation: { temperature: 0, minP: 0, topP: 1, maxNewTokens: 24 },
      device: 'auto',
    });
    expect(await runtime.integrateChatModel(base.ragModel.ref, fineTunedRef)).toEqual(integrated);
  });

  it('publishes an Evaluation of a dataset with all six scorers by default', async () => {
    const evaluation = await runtime.publishEvaluation({ dataset: datasetRef, displayName: 'qa-eval' });
    expect((await testHome.store.objects.get(evaluation.ref)).value).toMatchObject({
      _type: 'Evaluation',
      _bases: ['Object', 'BaseModel'],
      name: 'qa-eval',
      dataset: datasetRef,
      scorers: ['exact_match', 'f1', 'hit@5', 'mrr', 'groundedness', 'latency_ms'],
    });
    expect((await runtime.resolveEvaluation(evaluation.ref)).evaluation.dataset).toBe(datasetRef);
    expect((await runtime.publishEvaluation({ dataset: datasetRef, displayName: 'qa-eval' })).ref).toBe(evaluation.ref);
  });

  it('renders the default Prompt exactly as ragMessages, the format models are trained on', () => {
    const passages = ['First passage with {question} inside.', 'Second passage.'];
    expect(renderPrompt(defaultRagPrompt(), 'What is {context}?', passages)).toEqual(
      ragMessages('What is {context}?', passages),
    );
    expect(defaultRagPrompt().template).toBe('Context:\n{context}\n\nQuestion: {question}');
  });

  it('refuses bad app objects with typed, actionable errors and stores nothing', async () => {
    const before = await testHome.store.counts();
    await expect(runtime.publishEvaluation({ dataset: datasetRef, scorers: ['bleu'] })).rejects.toThrow(
      new InvalidAppObjectInputError(
        "Unknown scorer(s) 'bleu'; known scorers: exact_match, f1, hit@5, mrr, groundedness, latency_ms.",
      ),
    );
    await expect(
      runtime.publishChatModel({ modelArtifactRef: modelRef, generation: { temperature: -1 } }),
    ).rejects.toThrow(/temperature must be 0 \(greedy\) or positive/);
    await expect(
      runtime.publishChatModel({ modelArtifactRef: 'wandb-artifact:///weft/rag-demo/missing:v0' }),
    ).rejects.toThrow(/chat model artifact wandb-artifact:\/\/\/weft\/rag-demo\/missing:v0 does not exist/);
    const prompt = await runtime.publishPrompt();
    await expect(
      runtime.publishRagModel({
        chatModel: prompt.ref,
        embeddingModel: embeddingRef,
        collectionAlias: 'docs',
        prompt: prompt.ref,
      }),
    ).rejects.toThrow(InvalidAppObjectError);
    await expect(
      runtime.publishRagModel({
        chatModel: (await publishApp()).chatModel.ref,
        embeddingModel: embeddingRef,
        collectionAlias: 'docs',
        prompt: prompt.ref,
        retrieval: { topK: 3, passagesInPrompt: 4 },
      }),
    ).rejects.toThrow('retrieval.passagesInPrompt must be an integer from 1 to topK (3), got 4.');
    expect(await testHome.store.counts()).toEqual(before);
  });

  it('says which RagModel is unknown and how to find one', async () => {
    const unknown = 'weave:///weft/rag-demo/object/RagModel:v99';
    await expect(runtime.resolveRagModel(unknown)).rejects.toThrow(RagModelNotFoundError);
    await expect(runtime.predict(unknown, ['What?'])).rejects.toThrow(
      /The RagModel weave:\/\/\/weft\/rag-demo\/object\/RagModel:v99 does not exist; list versions with `weft objects show weft\/rag-demo\/RagModel`/,
    );
    await expect(runtime.resolveRagModel('not a ref')).rejects.toThrow(/is not a RagModel ref/);
  });

  it('says to ingest the corpus when a RagModel’s collection alias is not in this vector store', async () => {
    const { ragModel } = await publishApp();
    await expect(runtime.predict(ragModel.ref, ['What?'])).rejects.toThrow(
      new CollectionAliasMissingError('docs', ragModel.ref, 'sqlite-vec'),
    );
    await expect(runtime.predict(ragModel.ref, ['What?'])).rejects.toThrow(
      /weft ingest <corpus.jsonl or folder> --alias docs/,
    );
  });

  it('keeps the stored shape independent of key order and of omitted optional fields', () => {
    const left = chatModelValue({
      modelArtifactRef: modelRef,
      generation: { temperature: 0.7, minP: 0.05, topP: 1, maxNewTokens: 32 },
      device: 'cpu',
    });
    const right = chatModelValue({
      device: 'cpu',
      generation: { maxNewTokens: 32, topP: 1, minP: 0.05, temperature: 0.7, seed: undefined },
      modelArtifactRef: modelRef,
    });
    expect(objectDigest(left)).toBe(objectDigest(right));
  });

  // Last: it publishes a RagModel version the tests above do not expect.
  it('memoises a resolved RagModel by digest: a digest ref seen before reads nothing, :latest still moves', async () => {
    const base = await publishApp();
    const reads = jest.spyOn(testHome.store.objects, 'get');
    try {
      const first = await runtime.resolveRagModel(base.ragModel.ref);
      const readsForFirst = reads.mock.calls.length;
      expect(await runtime.resolveRagModel(base.ragModel.ref)).toBe(first);
      // Resolved before (here or by an earlier test), the digest ref costs no store read the second time.
      expect(reads.mock.calls.length).toBe(readsForFirst);

      const fineTuned = await runtime.publishChatModel({
        modelArtifactRef: fineTunedRef,
        generation: { temperature: 0, maxNewTokens: 7 },
      });
      const newer = await runtime.withChatModel(base.ragModel.ref, fineTuned.ref);
      const latest = await runtime.resolveRagModel('weave:///weft/rag-demo/object/RagModel:latest');
      expect(latest.ref).toBe(newer.ref);
      expect(latest.chatModel.generation.maxNewTokens).toBe(7);
    } finally {
      reads.mockRestore();
    }
  });
});
