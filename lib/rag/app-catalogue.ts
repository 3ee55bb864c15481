import {
  NotFoundError,
  parseRef,
  type ArtifactVersion,
  type LineageStore,
  type ObjectVersion,
  type PublishedObject,
} from '../lineage';
import { scorersByName } from '../scoring/scorers';
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
import { InvalidAppObjectInputError, RagModelNotFoundError } from './errors';

/**
 * The app catalogue: publishing and reading the app's versioned objects (ChatModel, Prompt, RagModel, Evaluation)
 * with their inputs checked, and integrating a new chat model into a RagModel. No model is loaded here.
 */

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

const defaultGeneration: GenerationSettings = { temperature: 0, minP: 0, topP: 1, maxNewTokens: 64 };
const defaultRetrieval = { topK: 5, hybrid: false };
/** Resolved RagModels kept per process: a digest names immutable content, so an entry never goes stale. */
const resolvedRagModelsKept = 256;

export function ensureObjectRef(ref: string, what: string): void {
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

export function ensureArtifactRef(ref: string, what: string): void {
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

export class AppCatalogue {
  /** Resolved RagModels by digest ref, oldest first (a Map keeps insertion order). */
  private readonly resolved = new Map<string, ResolvedRagModel>();

  constructor(readonly store: LineageStore) {}

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

  /**
   * A RagModel with its ChatModel and Prompt read, memoised by digest: a `:digest` ref seen before costs no store
   * read, a `:vN` or `:latest` ref one (to learn its digest).
   */
  async resolveRagModel(ref: string): Promise<ResolvedRagModel> {
    const known = this.resolved.get(ref);
    if (known) return known;
    const stored = await this.readRagModel(ref);
    const cached = this.resolved.get(stored.ref);
    if (cached) return cached;
    const ragModel = parseRagModel(stored.value, stored.ref);
    const [chatModel, prompt] = await Promise.all([
      this.readObject(ragModel.chatModel, 'ChatModel'),
      this.readObject(ragModel.prompt, 'Prompt'),
    ]);
    const resolved: ResolvedRagModel = {
      ref: stored.ref,
      version: stored.version,
      ragModel,
      chatModel: parseChatModel(chatModel.value, chatModel.ref),
      prompt: parsePrompt(prompt.value, prompt.ref),
    };
    if (this.resolved.size >= resolvedRagModelsKept) this.resolved.delete(this.resolved.keys().next().value!);
    this.resolved.set(stored.ref, resolved);
    return resolved;
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

  /** The artifact at `ref`, or an InvalidAppObjectInputError naming what it was for. */
  async requireArtifact(ref: string, what: string): Promise<ArtifactVersion> {
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

  private async readObject(ref: string, kind: string): Promise<ObjectVersion> {
    try {
      return await this.store.objects.get(ref);
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new InvalidAppObjectInputError(`The ${kind} ${ref} does not exist. ${error.message}`);
      }
      throw error;
    }
  }

  private async readRagModel(ref: string): Promise<ObjectVersion> {
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
