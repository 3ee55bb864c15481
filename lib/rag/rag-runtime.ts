import crypto from 'node:crypto';
import path from 'node:path';
import type { WeftConfig } from '../config/config';
import type { ChatModelRuntime, EmbeddingModelRuntime, GenerationResult, InferenceLogger } from '../inference';
import {
  canonicalJson,
  NotFoundError,
  parseRef,
  type ArtifactVersion,
  type LineageStore,
  type PublishedObject,
} from '../lineage';
import { scorersByName } from '../scoring/scorers';
import { CollectionNotFoundError, type PointStruct, type VectorStore } from '../vectors';
import {
  appObjectNames,
  chatModelValue,
  defaultRagPrompt,
  evaluationValue,
  parseChatModel,
  parseEvaluation,
  parsePrompt,
  parseRagModel,
  promptValue,
  ragModelValue,
  renderPrompt,
  validateGenerationSettings,
  validatePrompt,
  validateRetrievalSettings,
  validateScorers,
  type ChatModel,
  type ChatModelDevice,
  type DisplayOptions,
  type Evaluation,
  type GenerationSettings,
  type Prompt,
  type RagModel,
  type RetrievalSettings,
} from './app-objects';
import {
  chunkDocument,
  defaultChunking,
  passageEmbeddingText,
  passagePointId,
  readCorpus,
  validateChunking,
  validateDocuments,
  type CorpusDocument,
  type Passage,
} from './corpus';
import {
  CollectionAliasMissingError,
  EmptyQuestionError,
  maxQuestionCharacters,
  QuestionTooLongError,
  InvalidAppObjectInputError,
  InvalidCorpusError,
  RagModelNotFoundError,
} from './errors';
import {
  chatModelResources,
  embeddingModelRuntime,
  forgetModelFolder,
  type DevicePlacement,
} from './inference-resources';
import { manifestFileDigest, ModelCache } from './model-cache';

export interface RagRuntimeOptions {
  store: LineageStore;
  vectors: VectorStore;
  config: WeftConfig;
  /** Where model loading reports CUDA fallbacks; workers pass the Temporal logger. Default: console. */
  logger?: InferenceLogger;
}

export interface ChatModelInput extends DisplayOptions {
  /** A model artifact ref (`:vN`, alias or registry ref); stored pinned to its `:vN`. */
  modelArtifactRef: string;
  /** Default: greedy (temperature 0, minP 0, topP 1) with 64 new tokens. */
  generation?: Partial<GenerationSettings>;
  /** Default `auto`: the worker's WEFT_EXECUTION_PROVIDER. */
  device?: ChatModelDevice;
}

export interface RagModelInput extends DisplayOptions {
  /** A ChatModel object ref (`:digest`, `:vN` or `:latest`); stored pinned to its digest. */
  chatModel: string;
  /** An embedding model artifact ref; stored pinned to its `:vN`. */
  embeddingModel: string;
  collectionAlias: string;
  /** A Prompt object ref; stored pinned to its digest. */
  prompt: string;
  /** Default: top 5 documents, vector search only, all of them in the prompt. */
  retrieval?: Partial<RetrievalSettings>;
}

export interface EvaluationInput extends DisplayOptions {
  /** A Dataset object ref with rows {id, question, answer, doc_id}. */
  dataset: string;
  /** Default: every scorer in lib/scoring. */
  scorers?: string[];
}

/** A RagModel with its ChatModel and Prompt read. */
export interface ResolvedRagModel {
  /** The RagModel's digest ref. */
  ref: string;
  version: number;
  ragModel: RagModel;
  chatModel: ChatModel;
  prompt: Prompt;
}

export interface RetrievedContext {
  documentId: string;
  title: string;
  /** The passage text (what the model was shown). */
  text: string;
  /** Cosine similarity, or the fused RRF score for hybrid retrieval. */
  score: number;
}

export interface Prediction {
  answer: string;
  /** Best first, one per document. */
  contexts: RetrievedContext[];
  promptTokens: number;
  completionTokens: number;
  timings: {
    /** Embedding the questions and searching the collection: shared by the batch, in milliseconds. */
    retrievalMilliseconds: number;
    /** From the start of generation until this answer was complete, in milliseconds. */
    generationMilliseconds: number;
    /** From the predict call until this answer was complete, in milliseconds. */
    totalMilliseconds: number;
  };
}

export interface PredictOptions {
  /** Sampling seed for every question (each question's answer then repeats whatever it is batched with). */
  seed?: number;
}

export interface IngestInput {
  /** The documents, or `corpusPath` to read them from. */
  documents?: readonly CorpusDocument[];
  /** A JSON-lines corpus or a folder (see readCorpus). */
  corpusPath?: string;
  /** Base name of the collection: the collection is `<collectionName>-<content digest>`. Default: the alias. */
  collectionName?: string;
  /** The alias readers (RagModels) use; switched to the new collection once it is complete. */
  alias: string;
  embeddingModelRef: string;
  /** Words per passage. Default 120. */
  chunkWords?: number;
  onProgress?: (progress: { embeddedPassages: number; totalPassages: number }) => void;
}

export interface IngestResult {
  collection: string;
  alias: string;
  points: number;
  documents: number;
  /** The vector store's content version of the collection (cache keys derive from it). */
  contentVersion: string;
  /** False when this corpus and model were ingested before: nothing was embedded. */
  created: boolean;
  /** The collection the alias pointed at before, when it moved. */
  previousCollection: string | null;
}

export interface RagRuntime {
  readonly store: LineageStore;
  readonly vectors: VectorStore;
  publishChatModel(input: ChatModelInput): Promise<PublishedObject>;
  /** Default: the demo prompt (ragMessages' format). */
  publishPrompt(input?: Partial<Prompt> & DisplayOptions): Promise<PublishedObject>;
  publishRagModel(input: RagModelInput): Promise<PublishedObject>;
  publishEvaluation(input: EvaluationInput): Promise<PublishedObject>;
  resolveRagModel(ref: string): Promise<ResolvedRagModel>;
  resolveEvaluation(ref: string): Promise<{ ref: string; evaluation: Evaluation }>;
  /** A RagModel version like `ragModelRef` with only the ChatModel swapped; same inputs give the same ref. */
  withChatModel(ragModelRef: string, chatModelRef: string): Promise<PublishedObject>;
  /**
   * Integrate: a ChatModel for a new model artifact with the base ChatModel's generation settings and device, and a
   * RagModel version with it swapped in (withChatModel). Retrying returns the same refs.
   */
  integrateChatModel(
    ragModelRef: string,
    chatModelArtifactRef: string,
  ): Promise<{ ragModelRef: string; chatModelRef: string }>;
  predict(ragModelRef: string, questions: readonly string[], options?: PredictOptions): Promise<Prediction[]>;
  /**
   * What a cached prediction of this RagModel must match: its digest and the content version of the collection behind
   * its alias (a re-ingest changes answers). `sampled` (temperature above 0): predictions are not reproducible.
   */
  cacheIdentity(ragModelRef: string): Promise<{ key: string; sampled: boolean }>;
  collectionContentVersion(alias: string): Promise<string>;
  ingest(input: IngestInput): Promise<IngestResult>;
}

const defaultGeneration: GenerationSettings = { temperature: 0, minP: 0, topP: 1, maxNewTokens: 64 };
const defaultRetrieval = { topK: 5, hybrid: false };
/** Passages fetched per wanted document: a document is one or two passages, so this still yields topK documents. */
const passagesPerDocument = 3;
/** Passages embedded and written per step of ingest (bounded memory, visible progress). */
const ingestBatchSize = 64;
const passageTextField = 'text';

function elapsedSince(start: number): number {
  return Math.round((performance.now() - start) * 100) / 100;
}

function ensureObjectRef(ref: string, what: string): void {
  let parsed;
  try {
    parsed = parseRef(ref);
  } catch (error) {
    throw new InvalidAppObjectInputError(`${what} ${JSON.stringify(ref)} is not a ref: ${(error as Error).message}`);
  }
  if (parsed.kind !== 'object') {
    throw new InvalidAppObjectInputError(
      `${what} must be a Weave object ref (weave:///<entity>/<project>/object/<Name>:<digest>), got ${ref}.`,
    );
  }
}

function ensureArtifactRef(ref: string, what: string): void {
  let parsed;
  try {
    parsed = parseRef(ref);
  } catch (error) {
    throw new InvalidAppObjectInputError(`${what} ${JSON.stringify(ref)} is not a ref: ${(error as Error).message}`);
  }
  if (parsed.kind !== 'artifact' && parsed.kind !== 'registry') {
    throw new InvalidAppObjectInputError(
      `${what} must be an artifact ref (wandb-artifact:///<entity>/<project>/<name>:vN), got ${ref}.`,
    );
  }
}

class DefaultRagRuntime implements RagRuntime {
  private readonly modelCache: ModelCache;

  constructor(
    readonly store: LineageStore,
    readonly vectors: VectorStore,
    private readonly config: WeftConfig,
    private readonly logger: InferenceLogger | undefined,
  ) {
    this.modelCache = new ModelCache(store, path.join(config.home, 'cache', 'models'));
  }

  async publishChatModel(input: ChatModelInput): Promise<PublishedObject> {
    ensureArtifactRef(input.modelArtifactRef, 'The ChatModel’s modelArtifactRef');
    const generation: GenerationSettings = { ...defaultGeneration, ...input.generation };
    if (generation.seed === undefined) delete generation.seed;
    validateGenerationSettings(generation);
    const artifact = await this.requireArtifact(input.modelArtifactRef, 'chat model');
    const device = input.device ?? 'auto';
    if (!['auto', 'cpu', 'cuda'].includes(device)) {
      throw new InvalidAppObjectInputError(`device must be auto, cpu or cuda, got ${String(device)}.`);
    }
    const value = chatModelValue({ modelArtifactRef: artifact.ref, generation, device }, input);
    return this.store.objects.publish({ name: appObjectNames.chatModel, value });
  }

  async publishPrompt(input: Partial<Prompt> & DisplayOptions = {}): Promise<PublishedObject> {
    const fallback = defaultRagPrompt();
    const prompt: Prompt = { system: input.system ?? fallback.system, template: input.template ?? fallback.template };
    validatePrompt(prompt);
    return this.store.objects.publish({ name: appObjectNames.prompt, value: promptValue(prompt, input) });
  }

  async publishRagModel(input: RagModelInput): Promise<PublishedObject> {
    ensureObjectRef(input.chatModel, 'The RagModel’s chatModel');
    ensureObjectRef(input.prompt, 'The RagModel’s prompt');
    ensureArtifactRef(input.embeddingModel, 'The RagModel’s embeddingModel');
    const topK = input.retrieval?.topK ?? defaultRetrieval.topK;
    const retrieval: RetrievalSettings = {
      topK,
      hybrid: input.retrieval?.hybrid ?? defaultRetrieval.hybrid,
      passagesInPrompt: input.retrieval?.passagesInPrompt ?? topK,
    };
    validateRetrievalSettings(retrieval);
    if (
      typeof input.collectionAlias !== 'string' ||
      !/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(input.collectionAlias)
    ) {
      throw new InvalidAppObjectInputError(
        `collectionAlias ${JSON.stringify(input.collectionAlias)} is not a vector collection alias; use letters, digits, ".", "-" and "_".`,
      );
    }
    // Refs are stored pinned (digest, vN), so a RagModel version always means the same parts.
    const chatModel = await this.readObject(input.chatModel, 'ChatModel');
    parseChatModel(chatModel.value, chatModel.ref);
    const prompt = await this.readObject(input.prompt, 'Prompt');
    parsePrompt(prompt.value, prompt.ref);
    const embeddingModel = await this.requireArtifact(input.embeddingModel, 'embedding model');
    const ragModel: RagModel = {
      chatModel: chatModel.ref,
      embeddingModel: embeddingModel.ref,
      collectionAlias: input.collectionAlias,
      prompt: prompt.ref,
      retrieval,
    };
    return this.store.objects.publish({ name: appObjectNames.ragModel, value: ragModelValue(ragModel, input) });
  }

  async publishEvaluation(input: EvaluationInput): Promise<PublishedObject> {
    ensureObjectRef(input.dataset, 'The Evaluation’s dataset');
    const scorers = input.scorers ?? Object.keys(scorersByName);
    validateScorers(scorers);
    const dataset = await this.readObject(input.dataset, 'Dataset');
    if ((dataset.value as { _type?: unknown } | null)?._type !== 'Dataset') {
      throw new InvalidAppObjectInputError(`${dataset.ref} is not a Dataset; publish one with store.datasets.publish.`);
    }
    const value = evaluationValue({ dataset: dataset.ref, scorers }, input);
    return this.store.objects.publish({ name: appObjectNames.evaluation, value });
  }

  async resolveRagModel(ref: string): Promise<ResolvedRagModel> {
    const stored = await this.readRagModel(ref);
    const ragModel = parseRagModel(stored.value, stored.ref);
    const [chatModel, prompt] = await Promise.all([
      this.readObject(ragModel.chatModel, 'ChatModel'),
      this.readObject(ragModel.prompt, 'Prompt'),
    ]);
    return {
      ref: stored.ref,
      version: stored.version,
      ragModel,
      chatModel: parseChatModel(chatModel.value, chatModel.ref),
      prompt: parsePrompt(prompt.value, prompt.ref),
    };
  }

  async resolveEvaluation(ref: string): Promise<{ ref: string; evaluation: Evaluation }> {
    const stored = await this.readObject(ref, 'Evaluation');
    return { ref: stored.ref, evaluation: parseEvaluation(stored.value, stored.ref) };
  }

  async withChatModel(ragModelRef: string, chatModelRef: string): Promise<PublishedObject> {
    ensureObjectRef(chatModelRef, 'The new ChatModel');
    const base = await this.readRagModel(ragModelRef);
    parseRagModel(base.value, base.ref);
    const chatModel = await this.readObject(chatModelRef, 'ChatModel');
    parseChatModel(chatModel.value, chatModel.ref);
    // Every other field is copied as stored, so its refs (prompt, embedding model) stay exactly the same.
    const value = { ...(base.value as Record<string, unknown>), chat_model: chatModel.ref };
    // Swapping in the ChatModel it already has gives the identical value, hence the same ref and no new version.
    return this.store.objects.publish({ name: base.name, entity: base.entity, project: base.project, value });
  }

  async integrateChatModel(
    ragModelRef: string,
    chatModelArtifactRef: string,
  ): Promise<{ ragModelRef: string; chatModelRef: string }> {
    const base = await this.resolveRagModel(ragModelRef);
    const chatModel = await this.publishChatModel({
      modelArtifactRef: chatModelArtifactRef,
      generation: base.chatModel.generation,
      device: base.chatModel.device,
    });
    const integrated = await this.withChatModel(base.ref, chatModel.ref);
    return { ragModelRef: integrated.ref, chatModelRef: chatModel.ref };
  }

  async cacheIdentity(ragModelRef: string): Promise<{ key: string; sampled: boolean }> {
    const resolved = await this.resolveRagModel(ragModelRef);
    const contentVersion = await this.vectors.contentVersion(resolved.ragModel.collectionAlias);
    const key = crypto.createHash('sha256').update(`${resolved.ref}\n${contentVersion}`).digest('hex');
    return { key, sampled: resolved.chatModel.generation.temperature > 0 };
  }

  async predict(
    ragModelRef: string,
    questions: readonly string[],
    options: PredictOptions = {},
  ): Promise<Prediction[]> {
    const started = performance.now();
    questions.forEach((question, index) => {
      if (typeof question !== 'string' || question.trim().length === 0) throw new EmptyQuestionError(index);
      if (question.length > maxQuestionCharacters) throw new QuestionTooLongError(index, question.length);
    });
    if (questions.length === 0) return [];
    if (options.seed !== undefined && !(Number.isSafeInteger(options.seed) && options.seed >= 0)) {
      throw new InvalidAppObjectInputError(`seed must be a non-negative integer, got ${options.seed}.`);
    }
    const resolved = await this.resolveRagModel(ragModelRef);
    const { ragModel, chatModel, prompt } = resolved;
    // Checked before any model loads: a store without the corpus is the common mistake, and cheap to report.
    await this.requireCollectionAlias(ragModel.collectionAlias, resolved.ref);
    const placement = this.placementFor(chatModel.device);
    const [embedder, chat] = await Promise.all([
      this.embeddingModel(ragModel.embeddingModel, placement),
      this.chatModel(chatModel.modelArtifactRef, placement),
    ]);

    const retrievalStarted = performance.now();
    const contexts = await this.retrieve(embedder, ragModel, questions);
    const retrievalMilliseconds = elapsedSince(retrievalStarted);

    const generationStarted = performance.now();
    const generation = chatModel.generation;
    const seed = options.seed ?? generation.seed;
    const outcomes = await Promise.all(
      questions.map(async (question, index) => {
        const passages = contexts[index].slice(0, ragModel.retrieval.passagesInPrompt);
        const messages = this.fitPrompt(chat.runtime, prompt, question, passages, generation.maxNewTokens);
        const result: GenerationResult = await chat.batcher.generate({
          messages,
          temperature: generation.temperature,
          minP: generation.minP,
          topP: generation.topP,
          maxNewTokens: generation.maxNewTokens,
          seed,
        });
        return { result, completedAt: performance.now() };
      }),
    );
    return outcomes.map(({ result, completedAt }, index) => ({
      answer: result.text.trim(),
      contexts: contexts[index],
      promptTokens: result.promptTokens,
      completionTokens: result.completionTokens,
      timings: {
        retrievalMilliseconds,
        generationMilliseconds: Math.round((completedAt - generationStarted) * 100) / 100,
        totalMilliseconds: Math.round((completedAt - started) * 100) / 100,
      },
    }));
  }

  async collectionContentVersion(alias: string): Promise<string> {
    return this.vectors.contentVersion(alias);
  }

  async ingest(input: IngestInput): Promise<IngestResult> {
    if ((input.documents === undefined) === (input.corpusPath === undefined)) {
      throw new InvalidCorpusError('Give ingest exactly one of documents or corpusPath.');
    }
    const documents = input.documents ?? readCorpus(input.corpusPath!);
    if (input.documents !== undefined) validateDocuments(input.documents, 'The documents given to ingest');
    const chunking = { ...defaultChunking, chunkWords: input.chunkWords ?? defaultChunking.chunkWords };
    chunking.overlapWords = Math.min(chunking.overlapWords, Math.floor(chunking.chunkWords / 4));
    validateChunking(chunking);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(input.alias ?? '')) {
      throw new InvalidCorpusError(
        `The collection alias ${JSON.stringify(input.alias)} is invalid; use letters, digits, ".", "-" and "_", starting with a letter or digit.`,
      );
    }
    ensureArtifactRef(input.embeddingModelRef, 'The embedding model');
    const embeddingArtifact = await this.requireArtifact(input.embeddingModelRef, 'embedding model');
    const passages: Passage[] = documents.flatMap((document) =>
      chunkDocument({ ...document, title: document.title ?? document.id }, chunking),
    );
    // The collection's name is a digest of everything its points derive from: same corpus and model, same name.
    const contentDigest = crypto
      .createHash('sha256')
      .update(
        canonicalJson({
          format: 'weft-rag-collection/1',
          embeddingModel: embeddingArtifact.digest,
          chunking,
          passages: passages.map((passage) => [passage.documentId, passage.chunkIndex, passage.title, passage.text]),
        }),
      )
      .digest('hex');
    const collection = `${input.collectionName ?? input.alias}-${contentDigest.slice(0, 16)}`;
    const complete =
      (await this.vectors.collectionExists(collection)) && (await this.vectors.count(collection)) === passages.length;
    if (!complete) {
      const embedder = await this.embeddingModel(embeddingArtifact.ref, this.placementFor('auto'));
      await this.vectors.createCollection(collection, { size: embedder.dimension, distance: 'Cosine' });
      for (let start = 0; start < passages.length; start += ingestBatchSize) {
        const batch = passages.slice(start, start + ingestBatchSize);
        const vectors = await embedder.embed(batch.map(passageEmbeddingText));
        const points: PointStruct[] = batch.map((passage, index) => ({
          id: passagePointId(passage),
          vector: vectors[index],
          payload: {
            document_id: passage.documentId,
            title: passage.title,
            [passageTextField]: passage.text,
            chunk_index: passage.chunkIndex,
          },
        }));
        await this.vectors.upsert(collection, points);
        input.onProgress?.({ embeddedPassages: start + batch.length, totalPassages: passages.length });
      }
    }
    const previousCollection = await this.aliasTarget(input.alias);
    // Readers see the old collection or the complete new one, never a half-filled one.
    if (previousCollection !== collection) await this.vectors.switchAlias(input.alias, collection);
    return {
      collection,
      alias: input.alias,
      points: passages.length,
      documents: documents.length,
      contentVersion: await this.vectors.contentVersion(collection),
      created: !complete,
      previousCollection: previousCollection === collection ? null : previousCollection,
    };
  }

  private async requireCollectionAlias(alias: string, ragModelRef: string): Promise<void> {
    try {
      await this.vectors.getCollection(alias);
    } catch (error) {
      if (error instanceof CollectionNotFoundError) {
        throw new CollectionAliasMissingError(alias, ragModelRef, this.vectors.kind);
      }
      throw error;
    }
  }

  private async aliasTarget(alias: string): Promise<string | null> {
    const aliases = await this.vectors.listAliases();
    return aliases.find((entry) => entry.alias === alias)?.collection ?? null;
  }

  private placementFor(device: ChatModelDevice): DevicePlacement {
    return {
      executionProvider: device === 'auto' ? this.config.executionProvider : device,
      deviceId: this.config.cudaDeviceId,
      logger: this.logger,
    };
  }

  /** One embedding call for all questions, one batched vector query; the best passage of each of topK documents. */
  private async retrieve(
    embedder: EmbeddingModelRuntime,
    ragModel: RagModel,
    questions: readonly string[],
  ): Promise<RetrievedContext[][]> {
    const vectors = await embedder.embed(questions);
    const { topK, hybrid } = ragModel.retrieval;
    const results = await this.vectors.queryBatch(
      ragModel.collectionAlias,
      questions.map((question, index) => ({
        vector: vectors[index],
        limit: topK * passagesPerDocument,
        withPayload: true,
        ...(hybrid ? { hybrid: { field: passageTextField, text: question } } : {}),
      })),
    );
    return results.map((points) => {
      const contexts: RetrievedContext[] = [];
      const seen = new Set<string>();
      for (const point of points) {
        const documentId = String(point.payload.document_id ?? point.id);
        if (seen.has(documentId)) continue;
        seen.add(documentId);
        contexts.push({
          documentId,
          title: String(point.payload.title ?? ''),
          text: String(point.payload[passageTextField] ?? ''),
          score: point.score,
        });
        if (contexts.length === topK) break;
      }
      return contexts;
    });
  }

  /**
   * The prompt messages with as many of the retrieved passages (best first) as fit in the model's context window
   * next to the answer; a tiny model's window cannot always hold topK passages.
   */
  private fitPrompt(
    chat: ChatModelRuntime,
    prompt: Prompt,
    question: string,
    contexts: readonly RetrievedContext[],
    maxNewTokens: number,
  ) {
    const limit = chat.description.maxPositions - maxNewTokens;
    let count = contexts.length;
    for (;;) {
      const messages = renderPrompt(
        prompt,
        question,
        contexts.slice(0, count).map((context) => context.text),
      );
      if (count <= 1 || chat.encodePrompt({ messages }).length <= limit) return messages;
      count -= 1;
    }
  }

  private async chatModel(artifactRef: string, placement: DevicePlacement) {
    const { directory, artifact } = await this.modelCache.materialize(artifactRef, ['model.onnx', 'tokenizer.json']);
    const resources = await chatModelResources(directory, placement);
    if (await this.replacedCorruptCopy(artifact, resources.runtime.digest, directory)) {
      const again = await this.modelCache.materialize(artifactRef);
      return chatModelResources(again.directory, placement);
    }
    return resources;
  }

  private async embeddingModel(artifactRef: string, placement: DevicePlacement): Promise<EmbeddingModelRuntime> {
    const { directory, artifact } = await this.modelCache.materialize(artifactRef, [
      'model.onnx',
      'tokenizer.json',
      'weft-model.json',
    ]);
    const runtime = await embeddingModelRuntime(directory, placement);
    if (await this.replacedCorruptCopy(artifact, runtime.digest, directory)) {
      const again = await this.modelCache.materialize(artifactRef);
      return embeddingModelRuntime(again.directory, placement);
    }
    return runtime;
  }

  /** Compares the loaded weights' hash with the artifact's; a mismatching cached copy is deleted so it is fetched again. */
  private async replacedCorruptCopy(artifact: ArtifactVersion, loadedDigest: string, directory: string) {
    if (loadedDigest === manifestFileDigest(artifact, 'model.onnx')) return false;
    this.logger?.warn(`The cached copy of ${artifact.ref} in ${directory} was altered; fetching it again.`);
    await forgetModelFolder(directory);
    await this.modelCache.evict(artifact);
    return true;
  }

  private async requireArtifact(ref: string, what: string): Promise<ArtifactVersion> {
    try {
      return await this.store.artifacts.get(ref);
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new InvalidAppObjectInputError(
          `The ${what} artifact ${ref} does not exist: ${error.message} Log it first (bootstrapDemoProject does for the demo).`,
        );
      }
      throw error;
    }
  }

  private async readObject(ref: string, kind: string) {
    try {
      return await this.store.objects.get(ref);
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new InvalidAppObjectInputError(`The ${kind} ${ref} does not exist. ${error.message}`);
      }
      throw error;
    }
  }

  private async readRagModel(ref: string) {
    let parsed;
    try {
      parsed = parseRef(ref);
    } catch (error) {
      throw new RagModelNotFoundError(
        `${JSON.stringify(ref)} is not a RagModel ref (${(error as Error).message}); pass weave:///<entity>/<project>/object/RagModel:<digest|vN|latest>.`,
      );
    }
    if (parsed.kind !== 'object') {
      throw new RagModelNotFoundError(
        `${ref} is not a RagModel ref; pass weave:///<entity>/<project>/object/RagModel:<digest|vN|latest>.`,
      );
    }
    try {
      return await this.store.objects.get(ref);
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new RagModelNotFoundError(
          `The RagModel ${ref} does not exist; list versions with \`weft objects show ${parsed.entity}/${parsed.project}/${parsed.name}\`, or run \`weft ask\` without --rag to use the production or latest one.`,
        );
      }
      throw error;
    }
  }
}

/** The RAG runtime over a lineage store and a vector store; models load lazily and are shared per process. */
export function createRagRuntime(options: RagRuntimeOptions): RagRuntime {
  return new DefaultRagRuntime(options.store, options.vectors, options.config, options.logger);
}
