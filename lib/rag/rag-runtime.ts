import type { WeftConfig } from '../config/config';
import type { InferenceLogger } from '../inference';
import type { LineageStore, PublishedObject } from '../lineage';
import type { VectorStore } from '../vectors';
import type { DisplayOptions, Evaluation, Prompt } from './app-objects';
import {
  AppCatalogue,
  type ChatModelInput,
  type EvaluationInput,
  type RagModelInput,
  type ResolvedRagModel,
} from './app-catalogue';
import { CorpusIngest, type IngestInput, type IngestResult } from './ingest';
import { modelCacheFor, type ModelCache } from './model-cache';
import { RagModelSessions } from './model-sessions';
import { PredictRuntime, type PredictOptions, type Prediction } from './predict-runtime';

export type { ChatModelInput, EvaluationInput, RagModelInput, ResolvedRagModel } from './app-catalogue';
export type { IngestInput, IngestResult } from './ingest';
export type { PredictOptions, Prediction, RetrievedContext } from './predict-runtime';

export interface RagRuntimeOptions {
  store: LineageStore;
  vectors: VectorStore;
  config: WeftConfig;
  /** Where model loading reports CUDA fallbacks; workers pass the Temporal logger. Default: console. */
  logger?: InferenceLogger;
  /** The process's model cache, when something else shares it (the gpu worker's fine-tune). Default: WEFT_HOME's. */
  modelCache?: ModelCache;
}

/**
 * The RAG runtime: one object over the three jobs, so a worker or command opens one thing — the app catalogue
 * (app-catalogue.ts), ingest (ingest.ts) and the predict runtime (predict-runtime.ts), sharing model sessions.
 */
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

/** The RAG runtime over a lineage store and a vector store; models load lazily and are shared per process. */
export function createRagRuntime(options: RagRuntimeOptions): RagRuntime {
  const catalogue = new AppCatalogue(options.store);
  const sessions = new RagModelSessions(
    options.modelCache ?? modelCacheFor(options.store, options.config.home),
    options.config,
    options.logger,
  );
  const predictor = new PredictRuntime(catalogue, options.vectors, sessions);
  const corpus = new CorpusIngest(catalogue, options.vectors, sessions);
  return {
    store: options.store,
    vectors: options.vectors,
    publishChatModel: (input: ChatModelInput): Promise<PublishedObject> => catalogue.publishChatModel(input),
    publishPrompt: (input?: Partial<Prompt> & DisplayOptions) => catalogue.publishPrompt(input),
    publishRagModel: (input: RagModelInput) => catalogue.publishRagModel(input),
    publishEvaluation: (input: EvaluationInput) => catalogue.publishEvaluation(input),
    resolveRagModel: (ref: string): Promise<ResolvedRagModel> => catalogue.resolveRagModel(ref),
    resolveEvaluation: (ref: string): Promise<{ ref: string; evaluation: Evaluation }> =>
      catalogue.resolveEvaluation(ref),
    withChatModel: (ragModelRef: string, chatModelRef: string) => catalogue.withChatModel(ragModelRef, chatModelRef),
    integrateChatModel: (ragModelRef: string, chatModelArtifactRef: string) =>
      catalogue.integrateChatModel(ragModelRef, chatModelArtifactRef),
    predict: (
      ragModelRef: string,
      questions: readonly string[],
      predictOptions?: PredictOptions,
    ): Promise<Prediction[]> => predictor.predict(ragModelRef, questions, predictOptions),
    cacheIdentity: (ragModelRef: string) => predictor.cacheIdentity(ragModelRef),
    collectionContentVersion: (alias: string) => predictor.collectionContentVersion(alias),
    ingest: (input: IngestInput): Promise<IngestResult> => corpus.ingest(input),
  };
}
