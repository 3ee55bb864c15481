import { z } from 'zod';
import { ragMessages, type ChatMessage } from '../inference';
import { scorersByName } from '../scoring/scorers';
import { InvalidAppObjectError, InvalidAppObjectInputError } from './errors';

/**
 * The versioned objects of a RAG app. In TypeScript they are camelCase records; in the lineage store they are the
 * values the Python weave SDK writes for a `weave.Model` / `weave.Object` subclass (`_type`, `_class_name`,
 * `_bases`, `name`, `description`, then the fields in snake_case), so a Python client reads them as its own objects
 * and their digests match W&B's.
 */

/** Where a ChatModel prefers to run; `auto` follows the worker's WEFT_EXECUTION_PROVIDER. */
export type ChatModelDevice = 'auto' | 'cpu' | 'cuda';

export interface GenerationSettings {
  /** 0 is greedy decoding; above 0 samples. */
  temperature: number;
  /** Min-p filter, 0–1 (0 disables it). */
  minP: number;
  /** Nucleus filter, in (0, 1] (1 disables it). */
  topP: number;
  /** Most tokens an answer may have, the stop token included. */
  maxNewTokens: number;
  /** Seed of the sampler, so sampled answers repeat; absent: a fresh seed per call (unless predict gives one). */
  seed?: number;
}

export interface ChatModel {
  /** The model artifact, pinned: `wandb-artifact:///<entity>/<project>/<name>:vN`. */
  modelArtifactRef: string;
  generation: GenerationSettings;
  device: ChatModelDevice;
}

/** The RAG prompt: a system message and a user template with `{context}` and `{question}` placeholders. */
export interface Prompt {
  system: string;
  template: string;
}

export interface RetrievalSettings {
  /** Distinct documents retrieved per question; their best passages are the context. */
  topK: number;
  /** Fuse BM25 over the passage text with the vector ranking (reciprocal rank fusion). */
  hybrid: boolean;
  /**
   * How many of the retrieved passages (best first) the prompt holds; all topK are still returned as sources and
   * scored. The demo models are trained on one-passage prompts, so the demo app uses 1.
   */
  passagesInPrompt: number;
}

export interface RagModel {
  /** `weave:///…/object/ChatModel:<digest>`. */
  chatModel: string;
  /** The embedding model artifact, pinned: `wandb-artifact:///…:vN`. */
  embeddingModel: string;
  /** Vector collection alias; ingest switches it blue/green, so a RagModel follows the corpus's current version. */
  collectionAlias: string;
  /** `weave:///…/object/Prompt:<digest>`. */
  prompt: string;
  retrieval: RetrievalSettings;
}

export interface Evaluation {
  /** `weave:///…/object/<Dataset name>:<digest>` with rows {id, question, answer, doc_id}. */
  dataset: string;
  /** Names from lib/scoring's scorersByName. */
  scorers: string[];
}

/** Object names (Weave object ids) each kind is published under. */
export const appObjectNames = {
  chatModel: 'ChatModel',
  prompt: 'Prompt',
  ragModel: 'RagModel',
  evaluation: 'Evaluation',
} as const;

/** The `_bases` the Python weave SDK writes for a subclass of weave.Model and of weave.Object. */
const modelBases = ['Model', 'Object', 'BaseModel'];
const objectBases = ['Object', 'BaseModel'];

function typeHeader(className: string, bases: string[], name: string | undefined, description: string | undefined) {
  return {
    _type: className,
    _class_name: className,
    _bases: bases,
    name: name ?? className,
    description: description ?? null,
  };
}

export interface DisplayOptions {
  /** The object's `name` field, shown in the Weave UI. Default: the class name. */
  displayName?: string;
  description?: string;
}

function requireRange(condition: boolean, message: string): void {
  if (!condition) throw new InvalidAppObjectInputError(message);
}

/** Checks generation settings the way generate() will, so a bad ChatModel is refused when published, not when run. */
export function validateGenerationSettings(generation: GenerationSettings): void {
  requireRange(
    Number.isFinite(generation.temperature) && generation.temperature >= 0,
    `temperature must be 0 (greedy) or positive, got ${generation.temperature}.`,
  );
  requireRange(generation.minP >= 0 && generation.minP <= 1, `minP must be between 0 and 1, got ${generation.minP}.`);
  requireRange(generation.topP > 0 && generation.topP <= 1, `topP must be in (0, 1], got ${generation.topP}.`);
  requireRange(
    Number.isInteger(generation.maxNewTokens) && generation.maxNewTokens >= 1 && generation.maxNewTokens <= 4096,
    `maxNewTokens must be an integer from 1 to 4096, got ${generation.maxNewTokens}.`,
  );
  requireRange(
    generation.seed === undefined || (Number.isSafeInteger(generation.seed) && generation.seed >= 0),
    `seed must be a non-negative integer, got ${generation.seed}.`,
  );
}

export function validateRetrievalSettings(retrieval: RetrievalSettings): void {
  requireRange(
    Number.isInteger(retrieval.topK) && retrieval.topK >= 1 && retrieval.topK <= 50,
    `retrieval.topK must be an integer from 1 to 50, got ${retrieval.topK}.`,
  );
  requireRange(typeof retrieval.hybrid === 'boolean', 'retrieval.hybrid must be true or false.');
  requireRange(
    Number.isInteger(retrieval.passagesInPrompt) &&
      retrieval.passagesInPrompt >= 1 &&
      retrieval.passagesInPrompt <= retrieval.topK,
    `retrieval.passagesInPrompt must be an integer from 1 to topK (${retrieval.topK}), got ${retrieval.passagesInPrompt}.`,
  );
}

export function validatePrompt(prompt: Prompt): void {
  requireRange(typeof prompt.system === 'string', 'The prompt system message must be a string.');
  requireRange(
    typeof prompt.template === 'string' && prompt.template.includes('{question}'),
    'The prompt template must contain the {question} placeholder (and usually {context}).',
  );
}

export function validateScorers(scorers: readonly string[]): void {
  requireRange(
    scorers.length > 0,
    `An Evaluation needs at least one scorer: ${Object.keys(scorersByName).join(', ')}.`,
  );
  const unknown = scorers.filter((name) => !(name in scorersByName));
  requireRange(
    unknown.length === 0,
    `Unknown scorer(s) ${unknown.map((name) => `'${name}'`).join(', ')}; known scorers: ${Object.keys(scorersByName).join(', ')}.`,
  );
  requireRange(new Set(scorers).size === scorers.length, 'Each scorer may be named once.');
}

export function chatModelValue(chatModel: ChatModel, display: DisplayOptions = {}): Record<string, unknown> {
  return {
    ...typeHeader(appObjectNames.chatModel, modelBases, display.displayName, display.description),
    model_artifact_ref: chatModel.modelArtifactRef,
    generation: {
      temperature: chatModel.generation.temperature,
      min_p: chatModel.generation.minP,
      top_p: chatModel.generation.topP,
      max_new_tokens: chatModel.generation.maxNewTokens,
      seed: chatModel.generation.seed ?? null,
    },
    device: chatModel.device,
  };
}

export function promptValue(prompt: Prompt, display: DisplayOptions = {}): Record<string, unknown> {
  return {
    ...typeHeader(appObjectNames.prompt, objectBases, display.displayName, display.description),
    system: prompt.system,
    template: prompt.template,
  };
}

export function ragModelValue(ragModel: RagModel, display: DisplayOptions = {}): Record<string, unknown> {
  return {
    ...typeHeader(appObjectNames.ragModel, modelBases, display.displayName, display.description),
    chat_model: ragModel.chatModel,
    embedding_model: ragModel.embeddingModel,
    collection_alias: ragModel.collectionAlias,
    prompt: ragModel.prompt,
    retrieval: {
      top_k: ragModel.retrieval.topK,
      hybrid: ragModel.retrieval.hybrid,
      passages_in_prompt: ragModel.retrieval.passagesInPrompt,
    },
  };
}

export function evaluationValue(evaluation: Evaluation, display: DisplayOptions = {}): Record<string, unknown> {
  return {
    ...typeHeader(appObjectNames.evaluation, objectBases, display.displayName, display.description),
    dataset: evaluation.dataset,
    scorers: [...evaluation.scorers],
    trials: 1,
  };
}

const header = <T extends string>(className: T) =>
  z.object({ _type: z.literal(className), name: z.string().nullish(), description: z.string().nullish() });

const storedChatModel = header('ChatModel').extend({
  model_artifact_ref: z.string().startsWith('wandb-artifact:///'),
  generation: z.object({
    temperature: z.number(),
    min_p: z.number(),
    top_p: z.number(),
    max_new_tokens: z.number().int(),
    seed: z.number().int().nullish(),
  }),
  device: z.enum(['auto', 'cpu', 'cuda']),
});
const storedPrompt = header('Prompt').extend({ system: z.string(), template: z.string() });
const storedRagModel = header('RagModel').extend({
  chat_model: z.string().startsWith('weave:///'),
  embedding_model: z.string().startsWith('wandb-artifact:///'),
  collection_alias: z.string().min(1),
  prompt: z.string().startsWith('weave:///'),
  retrieval: z.object({
    top_k: z.number().int().positive(),
    hybrid: z.boolean(),
    passages_in_prompt: z.number().int().positive(),
  }),
});
const storedEvaluation = header('Evaluation').extend({
  dataset: z.string().startsWith('weave:///'),
  scorers: z.array(z.string()),
});

function parseStored<T>(schema: z.ZodType<T>, value: unknown, ref: string, kind: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const found =
      value !== null && typeof value === 'object' && typeof (value as { _type?: unknown })._type === 'string'
        ? `a ${(value as { _type: string })._type}`
        : 'not a typed object';
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'value'}: ${issue.message}`);
    throw new InvalidAppObjectError(
      `${ref} is not a ${kind} (it is ${found}; ${problems.slice(0, 3).join('; ')}). Pass a ${kind} ref, e.g. weave:///<entity>/<project>/object/${kind}:<digest>.`,
    );
  }
  return parsed.data;
}

export function parseChatModel(value: unknown, ref: string): ChatModel {
  const stored = parseStored(storedChatModel, value, ref, 'ChatModel');
  return {
    modelArtifactRef: stored.model_artifact_ref,
    generation: {
      temperature: stored.generation.temperature,
      minP: stored.generation.min_p,
      topP: stored.generation.top_p,
      maxNewTokens: stored.generation.max_new_tokens,
      ...(stored.generation.seed === null || stored.generation.seed === undefined
        ? {}
        : { seed: stored.generation.seed }),
    },
    device: stored.device,
  };
}

export function parsePrompt(value: unknown, ref: string): Prompt {
  const stored = parseStored(storedPrompt, value, ref, 'Prompt');
  return { system: stored.system, template: stored.template };
}

export function parseRagModel(value: unknown, ref: string): RagModel {
  const stored = parseStored(storedRagModel, value, ref, 'RagModel');
  return {
    chatModel: stored.chat_model,
    embeddingModel: stored.embedding_model,
    collectionAlias: stored.collection_alias,
    prompt: stored.prompt,
    retrieval: {
      topK: stored.retrieval.top_k,
      hybrid: stored.retrieval.hybrid,
      passagesInPrompt: stored.retrieval.passages_in_prompt,
    },
  };
}

export function parseEvaluation(value: unknown, ref: string): Evaluation {
  const stored = parseStored(storedEvaluation, value, ref, 'Evaluation');
  return { dataset: stored.dataset, scorers: stored.scorers };
}

const questionMarker = '\u0000question\u0000';
const contextMarker = '\u0000context\u0000';

/**
 * The prompt every demo RagModel uses: derived from lib/inference's ragMessages (the format the base model and
 * every fine-tune are trained on), so the stored Prompt cannot drift from it.
 */
export function defaultRagPrompt(): Prompt {
  const [system, user] = ragMessages(questionMarker, [contextMarker]);
  return {
    system: system.content,
    template: user.content.replace(questionMarker, '{question}').replace(contextMarker, '{context}'),
  };
}

/** Passages in a prompt's `{context}` are separated as ragMessages separates them. */
function contextSeparator(): string {
  const rendered = ragMessages('', [contextMarker, contextMarker])[1].content;
  const first = rendered.indexOf(contextMarker) + contextMarker.length;
  return rendered.slice(first, rendered.indexOf(contextMarker, first));
}

/** The messages of one RAG turn under a Prompt; for the default Prompt, exactly ragMessages(question, passages). */
export function renderPrompt(prompt: Prompt, question: string, passages: readonly string[]): ChatMessage[] {
  const context = passages.join(contextSeparator());
  // One pass, so a question that itself contains "{context}" is not expanded.
  const user = prompt.template.replace(/\{(question|context)\}/g, (_match, field: string) =>
    field === 'question' ? question : context,
  );
  const messages: ChatMessage[] = [];
  if (prompt.system.length > 0) messages.push({ role: 'system', content: prompt.system });
  messages.push({ role: 'user', content: user });
  return messages;
}
