import { sha256Hex } from '../lineage';
import type { ChatModelRuntime, EmbeddingModelRuntime, GenerationResult } from '../inference';
import { CollectionNotFoundError, type VectorStore } from '../vectors';
import { renderPrompt, type Prompt, type RagModel } from './app-objects';
import type { AppCatalogue } from './app-catalogue';
import { passageTextField } from './corpus';
import {
  CollectionAliasMissingError,
  EmptyQuestionError,
  InvalidAppObjectInputError,
  maxQuestionCharacters,
  QuestionTooLongError,
} from './errors';
import type { RagModelSessions } from './model-sessions';

/**
 * RagModel.predict: batched retrieval over the RagModel's collection alias, then batched generation with its chat
 * model; and what a cached prediction must match (cacheIdentity).
 */

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

/** Passages fetched per wanted document: a document is one or two passages, so this still yields topK documents. */
const passagesPerDocument = 3;

function elapsedSince(start: number): number {
  return Math.round((performance.now() - start) * 100) / 100;
}

export class PredictRuntime {
  constructor(
    private readonly catalogue: AppCatalogue,
    private readonly vectors: VectorStore,
    private readonly sessions: RagModelSessions,
  ) {}

  async cacheIdentity(ragModelRef: string): Promise<{ key: string; sampled: boolean }> {
    const resolved = await this.catalogue.resolveRagModel(ragModelRef);
    const contentVersion = await this.vectors.contentVersion(resolved.ragModel.collectionAlias);
    const key = sha256Hex(`${resolved.ref}\n${contentVersion}`);
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
    const resolved = await this.catalogue.resolveRagModel(ragModelRef);
    const { ragModel, chatModel, prompt } = resolved;
    // Checked before any model loads: a store without the corpus is the common mistake, and cheap to report.
    await this.requireCollectionAlias(ragModel.collectionAlias, resolved.ref);
    const placement = this.sessions.placementFor(chatModel.device);
    const [embedder, chat] = await Promise.all([
      this.sessions.embeddingModel(ragModel.embeddingModel, placement),
      this.sessions.chatModel(chatModel.modelArtifactRef, placement),
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
}
