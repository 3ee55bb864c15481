import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { type ChatMessage, ChatTemplate } from './chat-template';
import {
  ContextLengthExceededError,
  CorruptModelError,
  DimensionMismatchError,
  EmptyPromptError,
  InferenceRunError,
  InvalidGenerationOptionsError,
  ModelSignatureMismatchError,
  maxCharactersPerToken,
  PromptTooLongError,
} from './errors';
import {
  type CausalLanguageModelDescription,
  readCausalLanguageModelDescription,
  requireModelFolder,
} from './model-description';
import { type ExecutionProvider, type LoadedSession, type SessionOptions, loadSession } from './onnx-session';
import { type SamplingParameters, createSeededRandom, randomSeed, sampleToken } from './sampling';
import { Tokenizer } from './tokenizer/tokenizer';
import { type DecodeEngineName, type TorchEngineOptions, torchDecodeEngine } from './torch-engine';

/** Per-request generation settings; each row of a batch keeps its own. */
export interface GenerationParameters {
  /** Most tokens to generate, the stop token included. Default: generation_config.json's max_new_tokens, else 256. */
  maxNewTokens: number;
  /** Stop tokens are suppressed until this many tokens are generated (transformers' min_new_tokens). Default 0. */
  minNewTokens: number;
  /** 0 (default) is greedy decoding; above 0 samples. */
  temperature: number;
  /** Min-p filter for sampling, 0–1 (0, the default, disables it). */
  minP: number;
  /** Nucleus (top-p) filter for sampling, in (0, 1] (1, the default, disables it). */
  topP: number;
  /** Seed of the sampling generator; the same seed and prompt give the same completion. Default: random. */
  seed: number | undefined;
  /** Texts that end the completion when generated; they are not part of the returned text. */
  stopStrings: readonly string[];
}

/** One new piece of a completion, delivered as soon as it is decoded. */
export interface TokenEvent {
  /** Position of the request in the generate() call (always 0 through the micro-batcher). */
  requestIndex: number;
  tokenId: number;
  /** Text this token adds to the completion (empty while a multi-byte character or a possible stop string is pending). */
  text: string;
}

export interface GenerationRequest extends Partial<GenerationParameters> {
  /** A conversation, rendered with the model's chat template and a generation prompt. */
  messages?: readonly ChatMessage[];
  /** Raw text, tokenized with the tokenizer's special tokens (no chat template). */
  prompt?: string;
  /** Already tokenized prompt. */
  promptTokenIds?: readonly number[];
  /** Called for each generated token of this request. */
  onToken?: (event: TokenEvent) => void;
}

export interface GenerationOptions extends Partial<GenerationParameters> {
  /** Called for each generated token of every request. */
  onToken?: (event: TokenEvent) => void;
}

export type FinishReason = 'stop' | 'length';

export interface GenerationTimings {
  /** Most requests that shared one forward pass with this one (1: it ran alone). */
  batchSize: number;
  /** Time to tokenize the batch and run the prompt forward pass, in milliseconds. */
  prefillMs: number;
  /** Time of the token-by-token forward passes, in milliseconds. */
  decodeMs: number;
  totalMs: number;
  /** Time the request waited in a micro-batcher before its batch started, in milliseconds. */
  queueMs: number;
}

export interface GenerationResult {
  text: string;
  /** Generated token ids, the stop token included (as transformers' generate returns them). */
  tokenIds: number[];
  promptTokens: number;
  completionTokens: number;
  /**
   * 'stop': a stop token or stop string ended it; 'length': max_new_tokens or the context window did. A stop token
   * generated as the last allowed token is 'stop' (the stop check comes before the length check, as in vLLM and TGI),
   * and it counts in completionTokens.
   */
  finishReason: FinishReason;
  timings: GenerationTimings;
}

export interface ChatModelOptions extends SessionOptions {
  /** Most rows one forward pass carries; the rest of a larger generate() call joins as rows finish. Default 16. */
  maxBatchSize?: number;
  /**
   * Greedy rows without a token stream can decode inside onnxruntime through the folder's generate_greedy.onnx
   * (an ONNX Loop around the same decoder): one session run per batch, the key/value cache never leaves the device.
   * 'auto' (default) does so on CUDA, where the host loop would copy the cache to and from the GPU every step, and
   * on CPU, where one session run per batch saves the per-step feeds and cache copies (SmolLM2-135M, 2 cores, RAG
   * prompts: 21.1 vs 17.1 tokens/s at batch 1, 39.5 vs 29.7 at batch 8, bench/inference-generation.ts --lengths
   * natural); 'always' on any provider; 'never' keeps the host loop. Without the file the host loop runs.
   */
  greedyInGraph?: GreedyInGraph;
  /**
   * The weights the in-graph greedy decoder reads on CPU. 'float32' (default): the exported weights, tokens equal to
   * the host loop's and to PyTorch's. 'int8': the folder's generate_greedy.int8.onnx (trainer/quantize_int8.py:
   * MatMul weights in 8 bits), a quarter of the bytes per token, so batch-1 decode on a bandwidth-bound CPU runs
   * about 2x faster end to end (SmolLM2-135M, 2 cores: 3.5x PyTorch float32 on decode); greedy answers can differ
   * from float32's (qa-eval F1 within about ±0.02). Streamed, sampled and forced-length rows keep the float32 host
   * loop. A folder exported without the int8 graph decodes in float32, with a warning.
   */
  cpuWeights?: CpuWeights;
  /**
   * What decodes greedy rows (streamed ones too): 'onnxruntime' (default) or 'torch', the PyTorch engine
   * (trainer/decode_engine.py) on the model's hf/ weights, in a Python process shared by every runtime of the same
   * weights: on CUDA one torch.compile'd decode step per token replayed as a CUDA graph, on CPU eager float32.
   * Sampled and min-new-token rows keep onnxruntime's host loop. Loading fails (DecodeEngineUnavailableError) when
   * the engine cannot serve the model.
   */
  engine?: DecodeEngineName;
  /** The torch engine's Python (default .venv/bin/python) and CUDA step mode (default 'triton'; WEFT_TORCH_COMPILE). */
  torchEngine?: { python?: string; compile?: string };
}

export type GreedyInGraph = 'auto' | 'always' | 'never';
export type CpuWeights = 'float32' | 'int8';

/** The in-graph greedy decoder beside model.onnx (trainer/export_greedy_loop.py). */
export const greedyLoopFileName = 'generate_greedy.onnx';
/** The same decoder with 8-bit MatMul weights (trainer/quantize_int8.py), for CPUs. */
export const greedyInt8LoopFileName = 'generate_greedy.int8.onnx';

const defaultMaxNewTokens = 256;
const cacheKinds = ['key', 'value'] as const;

interface RowState {
  requestIndex: number;
  promptIds: number[];
  parameters: GenerationParameters;
  sampling: SamplingParameters;
  random: () => number;
  onToken: ((event: TokenEvent) => void) | undefined;
  generated: number[];
  /** Left padding of this row in the batch's key/value cache. */
  padding: number;
  /** Position id of the next token. */
  nextPosition: number;
  emittedLength: number;
  text: string;
  finishReason: FinishReason | undefined;
  /** When the row's prefill started and how long it took, in performance.now() milliseconds. */
  startedAt: number;
  prefillMs: number;
  /** Most rows that shared one forward pass with this row. */
  peakBatchSize: number;
}

/** The rows decoding together and their shared key/value cache, [rows, kv heads, cacheLength, head dim] per tensor. */
interface DecodingBatch {
  rows: RowState[];
  /** Per layer, key then value. */
  cache: ort.Tensor[];
  cacheLength: number;
}

/** A request handed to a continuous decoding loop, with where its outcome goes. */
export interface AdmittedRequest {
  request: GenerationRequest;
  resolve(result: GenerationResult): void;
  reject(error: unknown): void;
}

function expectedSignature(description: CausalLanguageModelDescription): { inputs: string[]; outputs: string[] } {
  const inputs = ['input_ids', 'attention_mask'];
  const outputs = ['logits'];
  for (let layer = 0; layer < description.numLayers; layer++) {
    inputs.push(`past_key_values.${layer}.key`, `past_key_values.${layer}.value`);
    outputs.push(`present.${layer}.key`, `present.${layer}.value`);
  }
  return { inputs, outputs };
}

/** Length of the longest end of `text` that could still grow into one of the stop strings. */
function pendingStopPrefixLength(text: string, stopStrings: readonly string[]): number {
  let longest = 0;
  for (const stop of stopStrings) {
    for (let length = Math.min(stop.length - 1, text.length); length > longest; length--) {
      if (text.endsWith(stop.slice(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}

/** Where one row's cached tokens are: a batch index in some cache tensors, right-aligned, `length` columns long. */
interface CacheSource {
  cache: ort.Tensor[];
  batchIndex: number;
  length: number;
}

/**
 * Builds fresh cache tensors with one row per source, each source's tokens right-aligned in `cacheLength` columns
 * (left padding is zero and masked out). Used to merge new rows in, drop finished rows and trim shared padding.
 */
function layoutCache(sources: readonly CacheSource[], cacheLength: number): ort.Tensor[] {
  const tensorCount = sources[0].cache.length;
  const [, heads, , headDimension] = sources[0].cache[0].dims;
  const { type } = sources[0].cache[0];
  return Array.from({ length: tensorCount }, (_, tensorIndex) => {
    const target = newCacheData(type, sources.length * heads * cacheLength * headDimension);
    sources.forEach((source, row) => {
      const tensor = source.cache[tensorIndex];
      const sourceLength = tensor.dims[2];
      const data = tensor.data as CacheData;
      for (let head = 0; head < heads; head++) {
        const from = ((source.batchIndex * heads + head) * sourceLength + sourceLength - source.length) * headDimension;
        const to = ((row * heads + head) * cacheLength + cacheLength - source.length) * headDimension;
        target.set(data.subarray(from, from + source.length * headDimension), to);
      }
    });
    return new ort.Tensor(type, target, [sources.length, heads, cacheLength, headDimension]);
  });
}

/** Key/value cache elements: float32, or float16 as raw 16-bit words (copied, never interpreted, by weft). */
type CacheType = 'float32' | 'float16';
type CacheData = Float32Array | Uint16Array;

function newCacheData(type: string, length: number): CacheData {
  return type === 'float16' ? new Uint16Array(length) : new Float32Array(length);
}

/** Rows generate_greedy.onnx decodes as the host loop would: greedy, no forced minimum, nobody streaming tokens. */
function fitsGreedyLoop(row: RowState): boolean {
  return row.parameters.temperature === 0 && row.parameters.minNewTokens === 0 && row.onToken === undefined;
}

/** Rows the torch engine decodes as the host loop would: greedy, no forced minimum (streaming is fine). */
function fitsTorchEngine(row: RowState): boolean {
  return row.parameters.temperature === 0 && row.parameters.minNewTokens === 0;
}

/** Shared left padding worth a copy to drop: attention over it costs every later forward pass. */
const paddingTrimThreshold = 32;

/**
 * A causal LM exported to ONNX with a key/value cache, its tokenizer and chat template. Prompts are prefilled one
 * by one, then decode together: one forward pass yields a token for every row of the batch, rows left-padded in a
 * shared cache. Each row stops on its own and leaves the batch; generateContinuously() also lets rows join mid-way.
 */
export class ChatModelRuntime {
  private readonly session: ort.InferenceSession;
  private readonly feedsPositionIds: boolean;
  private readonly feedsCacheBranch: boolean;
  private readonly maxBatchSize: number;
  private readonly cacheType: CacheType;
  private useGreedyLoop: boolean;
  private greedyLoop: Promise<LoadedSession> | undefined;
  /** generate_greedy.onnx, or its int8 twin when cpuWeights asks for it on CPU and the folder has it. */
  private readonly greedyLoopFile: string;
  private readonly sessionOptions: ChatModelOptions;
  /** Set when greedy rows go to the PyTorch engine (ChatModelOptions.engine 'torch'). */
  private readonly torchEngineOptions: TorchEngineOptions | undefined;
  readonly modelPath: string;
  /** sha256 of model.onnx. */
  readonly digest: string;
  readonly executionProvider: ExecutionProvider;

  constructor(
    loaded: LoadedSession,
    readonly tokenizer: Tokenizer,
    readonly chatTemplate: ChatTemplate,
    readonly description: CausalLanguageModelDescription,
    options: ChatModelOptions = {},
    /** The model folder (sessions are shared by weights digest, so the session's own path may be another copy's). */
    readonly folder: string = path.dirname(loaded.modelPath),
  ) {
    this.session = loaded.session;
    this.modelPath = loaded.modelPath;
    this.digest = loaded.digest;
    this.executionProvider = loaded.executionProvider;
    this.maxBatchSize = options.maxBatchSize ?? 16;
    const expected = expectedSignature(description);
    const inputNames = this.session.inputNames;
    const outputNames = this.session.outputNames;
    const optionalInputs = ['position_ids', 'use_cache_branch'];
    const unexpectedInputs = inputNames.filter(
      (name) => !expected.inputs.includes(name) && !optionalInputs.includes(name),
    );
    if (expected.inputs.some((name) => !inputNames.includes(name)) || unexpectedInputs.length > 0) {
      throw new ModelSignatureMismatchError(loaded.modelPath, 'inputs', expected.inputs, inputNames);
    }
    if (expected.outputs.some((name) => !outputNames.includes(name))) {
      throw new ModelSignatureMismatchError(loaded.modelPath, 'outputs', expected.outputs, outputNames);
    }
    const cacheInput = this.session.inputMetadata.find((input) => input.name === 'past_key_values.0.key');
    const cacheType = cacheInput?.isTensor ? cacheInput.type : 'float32';
    if (cacheType !== 'float32' && cacheType !== 'float16') {
      throw new CorruptModelError(
        loaded.modelPath,
        `its key/value cache is ${cacheType}; weft runs float32 or float16 exports (trainer/export_onnx.py)`,
      );
    }
    this.cacheType = cacheType;
    const logitsOutput = this.session.outputMetadata.find((output) => output.name === 'logits');
    this.checkDimensions(
      loaded.modelPath,
      logitsOutput?.isTensor ? logitsOutput.shape : undefined,
      cacheInput?.isTensor ? cacheInput.shape : undefined,
    );
    if (logitsOutput?.isTensor && logitsOutput.type !== 'float32') {
      throw new CorruptModelError(
        loaded.modelPath,
        `its logits are ${logitsOutput.type}; weft reads float32 logits (a float16 export casts them at the end)`,
      );
    }
    // Both providers weft runs on gain from it (see greedyInGraph), so 'auto' and 'always' agree today.
    this.useGreedyLoop =
      (options.greedyInGraph ?? 'auto') !== 'never' && existsSync(path.join(folder, greedyLoopFileName));
    this.sessionOptions = options;
    this.greedyLoopFile = greedyLoopFileName;
    if (options.cpuWeights === 'int8' && this.executionProvider === 'cpu' && this.useGreedyLoop) {
      if (existsSync(path.join(folder, greedyInt8LoopFileName))) this.greedyLoopFile = greedyInt8LoopFileName;
      else {
        (options.logger ?? console).warn(
          `WEFT_CPU_WEIGHTS=int8, but ${folder} has no ${greedyInt8LoopFileName} (exported before 8-bit weights, or ` +
            `its export refused them: see greedy_int8 in weft-model.json); decoding with float32 weights.`,
        );
      }
    }
    this.feedsPositionIds = inputNames.includes('position_ids');
    this.feedsCacheBranch = inputNames.includes('use_cache_branch');
    this.torchEngineOptions =
      options.engine === 'torch'
        ? {
            python: options.torchEngine?.python ?? path.join(__dirname, '..', '..', '.venv', 'bin', 'python'),
            device: this.executionProvider === 'cuda' ? `cuda:${options.deviceId ?? 0}` : 'cpu',
            compile: options.torchEngine?.compile,
            logger: options.logger,
          }
        : undefined;
  }

  /** Which decoder serves greedy rows: 'torch' (the PyTorch engine) or 'onnxruntime'. */
  get decodeEngine(): DecodeEngineName {
    return this.torchEngineOptions ? 'torch' : 'onnxruntime';
  }

  /** Starts (or finds) the PyTorch engine process; resolves once it has loaded and checked the weights. */
  async startTorchEngine() {
    if (!this.torchEngineOptions) throw new Error('this runtime decodes with onnxruntime (engine option not torch)');
    return torchDecodeEngine(this.folder, this.torchEngineOptions);
  }

  /** The prompt string transformers' `apply_chat_template(messages, add_generation_prompt=True)` produces. */
  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    return this.chatTemplate.render(messages, options);
  }

  /** Prompt token ids for a request: chat-templated messages, raw prompt text, or the given ids. */
  encodePrompt(request: GenerationRequest, requestIndex = 0): number[] {
    // Text that cannot fit whatever its tokens is refused before tokenising (a megabyte question, say).
    const maxCharacters = this.description.maxPositions * maxCharactersPerToken;
    const characters =
      request.promptTokenIds !== undefined
        ? 0
        : (request.prompt?.length ?? 0) +
          (request.messages ?? []).reduce((sum, message) => sum + (message.content?.length ?? 0), 0);
    if (characters > maxCharacters) {
      throw new PromptTooLongError(requestIndex, characters, maxCharacters, this.description.maxPositions);
    }
    let ids: number[];
    if (request.promptTokenIds !== undefined) ids = [...request.promptTokenIds];
    else if (request.messages !== undefined) {
      const rendered = this.chatTemplate.render(request.messages, { requestIndex });
      // apply_chat_template tokenizes without adding special tokens: the template already holds them.
      ids = this.tokenizer.encode(rendered, { addSpecialTokens: false });
    } else if (request.prompt !== undefined && request.prompt.length > 0) {
      ids = this.tokenizer.encode(request.prompt);
    } else ids = [];
    if (ids.length === 0) throw new EmptyPromptError(requestIndex);
    return ids;
  }

  generate(request: GenerationRequest, options?: GenerationOptions): Promise<GenerationResult>;
  generate(requests: readonly GenerationRequest[], options?: GenerationOptions): Promise<GenerationResult[]>;
  async generate(
    requests: GenerationRequest | readonly GenerationRequest[],
    options: GenerationOptions = {},
  ): Promise<GenerationResult | GenerationResult[]> {
    const list = Array.isArray(requests) ? (requests as readonly GenerationRequest[]) : [requests as GenerationRequest];
    // Validate and tokenize everything first, so a bad request fails the call before any compute is spent.
    const rows = list.map((request, requestIndex) => this.prepareRow(request, requestIndex, options));
    const results = new Map<RowState, GenerationResult>();
    // Rows join as others finish, so a call larger than maxBatchSize keeps every slot of the batch busy.
    const waiting = [...rows];
    await this.decodeLoop(
      (capacity) => waiting.splice(0, capacity),
      this.maxBatchSize,
      (row) => results.set(row, this.resultOf(row)),
    );
    const ordered = rows.map((row) => results.get(row) as GenerationResult);
    return Array.isArray(requests) ? ordered : ordered[0];
  }

  private prepareRow(request: GenerationRequest, requestIndex: number, options: GenerationOptions): RowState {
    const parameters: GenerationParameters = {
      maxNewTokens:
        request.maxNewTokens ?? options.maxNewTokens ?? this.description.defaultMaxNewTokens ?? defaultMaxNewTokens,
      minNewTokens: request.minNewTokens ?? options.minNewTokens ?? 0,
      temperature: request.temperature ?? options.temperature ?? 0,
      minP: request.minP ?? options.minP ?? 0,
      topP: request.topP ?? options.topP ?? 1,
      seed: request.seed ?? options.seed,
      stopStrings: request.stopStrings ?? options.stopStrings ?? [],
    };
    const prefix = `request ${requestIndex}: `;
    if (!Number.isInteger(parameters.maxNewTokens) || parameters.maxNewTokens < 1) {
      throw new InvalidGenerationOptionsError(`${prefix}maxNewTokens must be a positive integer`);
    }
    if (
      !Number.isInteger(parameters.minNewTokens) ||
      parameters.minNewTokens < 0 ||
      parameters.minNewTokens > parameters.maxNewTokens
    ) {
      throw new InvalidGenerationOptionsError(`${prefix}minNewTokens must be an integer from 0 to maxNewTokens`);
    }
    if (!Number.isFinite(parameters.temperature) || parameters.temperature < 0) {
      throw new InvalidGenerationOptionsError(`${prefix}temperature must be 0 (greedy) or positive`);
    }
    if (!(parameters.minP >= 0 && parameters.minP <= 1)) {
      throw new InvalidGenerationOptionsError(`${prefix}minP must be between 0 and 1`);
    }
    if (!(parameters.topP > 0 && parameters.topP <= 1)) {
      throw new InvalidGenerationOptionsError(`${prefix}topP must be in (0, 1]`);
    }
    if (parameters.stopStrings.some((stop) => stop.length === 0)) {
      throw new InvalidGenerationOptionsError(`${prefix}stop strings must not be empty`);
    }
    const promptIds = this.encodePrompt(request, requestIndex);
    if (promptIds.length + parameters.maxNewTokens > this.description.maxPositions) {
      throw new ContextLengthExceededError(
        requestIndex,
        promptIds.length,
        parameters.maxNewTokens,
        this.description.maxPositions,
      );
    }
    const requestCallback = request.onToken;
    const sharedCallback = options.onToken;
    return {
      requestIndex,
      promptIds,
      parameters,
      sampling: { temperature: parameters.temperature, minP: parameters.minP, topP: parameters.topP },
      random: createSeededRandom(parameters.seed ?? randomSeed()),
      onToken:
        requestCallback || sharedCallback
          ? (event) => {
              requestCallback?.(event);
              sharedCallback?.(event);
            }
          : undefined,
      generated: [],
      padding: 0,
      nextPosition: promptIds.length,
      emittedLength: 0,
      text: '',
      finishReason: undefined,
      startedAt: 0,
      prefillMs: 0,
      peakBatchSize: 0,
    };
  }

  private async run(feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    try {
      return await this.session.run(feeds);
    } catch (error) {
      throw new InferenceRunError(this.modelPath, error);
    }
  }

  /**
   * The description against the graph's dimensions: at load from the fixed axes of the graph's metadata (the in-graph
   * decoder never shows weft the logits or the cache, so a wrong weft-model.json must be caught before either decoder
   * runs), and on every host-loop run from the outputs. Axes the graph leaves symbolic are skipped.
   */
  private checkDimensions(
    modelPath: string,
    logitsShape: readonly (number | string)[] | undefined,
    cacheShape: readonly (number | string)[] | undefined,
  ): void {
    const checks: [string, number, number | string | undefined][] = [
      ['logits vocabulary size', this.description.vocabularySize, logitsShape?.[2]],
      ['key/value heads', this.description.numKeyValueHeads, cacheShape?.[1]],
      ['head dimension', this.description.headDimension, cacheShape?.[3]],
    ];
    for (const [what, expected, found] of checks) {
      if (typeof found === 'number' && found !== expected) {
        throw new DimensionMismatchError(`${modelPath} ${what}`, expected, found);
      }
    }
  }

  private checkOutputs(outputs: ort.InferenceSession.ReturnType): void {
    const logits = outputs.logits as ort.Tensor;
    const firstKey = outputs['present.0.key'] as ort.Tensor;
    this.checkDimensions(this.modelPath, logits.dims, firstKey.dims);
  }

  /** Runs one prompt alone (past length 0) and returns its cache and the logits of its last position. */
  private async prefill(row: RowState): Promise<{ cache: ort.Tensor[]; logits: Float32Array; offset: number }> {
    const { numLayers, numKeyValueHeads, headDimension, vocabularySize } = this.description;
    const length = row.promptIds.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(row.promptIds, BigInt), [1, length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(length).fill(1n), [1, length]),
    };
    if (this.feedsPositionIds) {
      feeds.position_ids = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length }, (_, index) => BigInt(index)),
        [1, length],
      );
    }
    if (this.feedsCacheBranch) feeds.use_cache_branch = new ort.Tensor('bool', [false], [1]);
    const emptyCache = newCacheData(this.cacheType, 0);
    for (let layer = 0; layer < numLayers; layer++) {
      for (const kind of cacheKinds) {
        feeds[`past_key_values.${layer}.${kind}`] = new ort.Tensor(this.cacheType, emptyCache, [
          1,
          numKeyValueHeads,
          0,
          headDimension,
        ]);
      }
    }
    const outputs = await this.run(feeds);
    this.checkOutputs(outputs);
    const cache: ort.Tensor[] = [];
    for (let layer = 0; layer < numLayers; layer++) {
      for (const kind of cacheKinds) cache.push(outputs[`present.${layer}.${kind}`] as ort.Tensor);
    }
    // Exports since trainer/export_onnx.py's logits_to_keep give the last position only ([1, 1, vocab]); older ones
    // and Optimum's give every position: either way the last row is the one to sample from.
    const logits = outputs.logits as ort.Tensor;
    return {
      cache,
      logits: logits.data as Float32Array,
      offset: (logits.dims[1] - 1) * vocabularySize,
    };
  }

  /**
   * Prefills rows one at a time (no compute spent on padding, and the same arithmetic as an unbatched call) and
   * merges those still generating into the batch, left-padding whichever side is shorter.
   */
  private async admitRows(
    batch: DecodingBatch,
    rows: readonly RowState[],
    onFinished: (row: RowState) => void,
  ): Promise<void> {
    const joining: Array<{ row: RowState; cache: ort.Tensor[] }> = [];
    for (const row of rows) {
      row.startedAt = performance.now();
      const { cache, logits, offset } = await this.prefill(row);
      row.peakBatchSize = Math.max(row.peakBatchSize, 1);
      this.acceptToken(row, this.chooseToken(row, logits, offset));
      row.prefillMs = performance.now() - row.startedAt;
      if (row.finishReason === undefined) joining.push({ row, cache });
      else onFinished(row);
    }
    if (joining.length === 0) return;
    const cacheLength = Math.max(batch.cacheLength, ...joining.map(({ row }) => row.promptIds.length));
    const sources: CacheSource[] = [
      ...batch.rows.map((row, batchIndex) => ({
        cache: batch.cache,
        batchIndex,
        length: batch.cacheLength - row.padding,
      })),
      ...joining.map(({ row, cache }) => ({ cache, batchIndex: 0, length: row.promptIds.length })),
    ];
    batch.cache = layoutCache(sources, cacheLength);
    batch.rows = [...batch.rows, ...joining.map(({ row }) => row)];
    batch.rows.forEach((row, index) => (row.padding = cacheLength - sources[index].length));
    batch.cacheLength = cacheLength;
  }

  /** One forward pass for every row of the batch: a token each; finished rows leave, shared padding is trimmed. */
  private async decodeStep(batch: DecodingBatch, onFinished: (row: RowState) => void): Promise<void> {
    const { numLayers, vocabularySize } = this.description;
    const { rows, cacheLength } = batch;
    const size = rows.length;
    const stepMask = new BigInt64Array(size * (cacheLength + 1));
    const stepPositions = new BigInt64Array(size);
    const stepTokens = new BigInt64Array(size);
    rows.forEach((row, rowIndex) => {
      stepMask.fill(1n, rowIndex * (cacheLength + 1) + row.padding, (rowIndex + 1) * (cacheLength + 1));
      stepPositions[rowIndex] = BigInt(row.nextPosition - 1);
      stepTokens[rowIndex] = BigInt(row.generated[row.generated.length - 1]);
      row.peakBatchSize = Math.max(row.peakBatchSize, size);
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', stepTokens, [size, 1]),
      attention_mask: new ort.Tensor('int64', stepMask, [size, cacheLength + 1]),
    };
    if (this.feedsPositionIds) feeds.position_ids = new ort.Tensor('int64', stepPositions, [size, 1]);
    if (this.feedsCacheBranch) feeds.use_cache_branch = new ort.Tensor('bool', [true], [1]);
    for (let layer = 0; layer < numLayers; layer++) {
      cacheKinds.forEach((kind, kindIndex) => {
        feeds[`past_key_values.${layer}.${kind}`] = batch.cache[layer * cacheKinds.length + kindIndex];
      });
    }
    const outputs = await this.run(feeds);
    const logits = (outputs.logits as ort.Tensor).data as Float32Array;
    const present: ort.Tensor[] = [];
    for (let layer = 0; layer < numLayers; layer++) {
      for (const kind of cacheKinds) present.push(outputs[`present.${layer}.${kind}`] as ort.Tensor);
    }
    const kept: RowState[] = [];
    const sources: CacheSource[] = [];
    rows.forEach((row, rowIndex) => {
      this.acceptToken(row, this.chooseToken(row, logits, rowIndex * vocabularySize));
      if (row.finishReason !== undefined) {
        onFinished(row);
        return;
      }
      kept.push(row);
      sources.push({ cache: present, batchIndex: rowIndex, length: cacheLength + 1 - row.padding });
    });
    batch.rows = kept;
    if (kept.length === 0) {
      batch.cache = [];
      batch.cacheLength = 0;
      return;
    }
    const sharedPadding = Math.min(...kept.map((row) => row.padding));
    const trim = sharedPadding >= paddingTrimThreshold ? sharedPadding : 0;
    batch.cacheLength = cacheLength + 1 - trim;
    if (kept.length === rows.length && trim === 0) batch.cache = present;
    else {
      // Finished rows leave the batch and shared padding goes: later passes pay only for what is still needed.
      batch.cache = layoutCache(sources, batch.cacheLength);
      kept.forEach((row) => (row.padding -= trim));
    }
  }

  private resultOf(row: RowState): GenerationResult {
    const totalMs = performance.now() - row.startedAt;
    return {
      text: row.text,
      tokenIds: row.generated,
      promptTokens: row.promptIds.length,
      completionTokens: row.generated.length,
      finishReason: row.finishReason ?? 'length',
      timings: {
        batchSize: row.peakBatchSize,
        prefillMs: row.prefillMs,
        decodeMs: totalMs - row.prefillMs,
        totalMs,
        queueMs: 0,
      },
    };
  }

  /**
   * Decodes until nothing runs and `pull(capacity)` has nothing more: between forward passes, up to `capacity` new
   * rows join the batch (prefilled one by one, then merged into the shared cache).
   */
  private async decodeLoop(
    pull: (capacity: number) => RowState[],
    maxBatchSize: number,
    onFinished: (row: RowState) => void,
  ): Promise<void> {
    const batch: DecodingBatch = { rows: [], cache: [], cacheLength: 0 };
    const carried: RowState[] = [];
    const next = (capacity: number) => (carried.length > 0 ? carried.splice(0, capacity) : pull(capacity));
    for (;;) {
      const joining = batch.rows.length < maxBatchSize ? next(maxBatchSize - batch.rows.length) : [];
      if (batch.rows.length === 0 && joining.length > 0 && this.torchEngineOptions && joining.every(fitsTorchEngine)) {
        // Rows pulled meanwhile that the engine does not serve (sampled, forced lengths) come back for the host loop.
        carried.push(...(await this.decodeWithTorchEngine(joining, onFinished, pull, maxBatchSize)));
        continue;
      }
      if (batch.rows.length === 0 && joining.length > 0 && this.useGreedyLoop && joining.every(fitsGreedyLoop)) {
        try {
          await this.decodeInGraph(joining, onFinished);
          continue;
        } catch (error) {
          if (!(error instanceof InferenceRunError || error instanceof CorruptModelError)) throw error;
          // The in-graph decoder is an accelerator, not a requirement: these rows and all later ones take the host
          // loop, which gives the same tokens.
          this.useGreedyLoop = false;
          (this.sessionOptions.logger ?? console).warn(
            `${this.greedyLoopFile} in ${this.folder} cannot run here; decoding step by step instead.`,
            { reason: (error as Error).message.split('\n')[0] },
          );
        }
      }
      if (joining.length > 0) await this.admitRows(batch, joining, onFinished);
      if (batch.rows.length > 0) await this.decodeStep(batch, onFinished);
      else if (joining.length === 0) return;
    }
  }

  /**
   * Continuous batching: decodes requests as they are handed over. Between forward passes it asks `next(capacity)`
   * for up to `capacity` more requests, which join the running batch at once instead of waiting for it to finish.
   * Returns when nothing is decoding and `next` hands over nothing. Each request's outcome goes to its own callbacks:
   * an invalid request fails alone; a failed forward pass fails the requests decoding at that moment.
   */
  async generateContinuously(
    next: (capacity: number) => AdmittedRequest[],
    options: { maxBatchSize?: number } = {},
  ): Promise<void> {
    const maxBatchSize = options.maxBatchSize ?? this.maxBatchSize;
    const outcomes = new Map<RowState, AdmittedRequest>();
    const pull = (capacity: number): RowState[] => {
      for (;;) {
        const admitted = next(capacity);
        if (admitted.length === 0) return [];
        const rows: RowState[] = [];
        for (const entry of admitted) {
          try {
            const row = this.prepareRow(entry.request, 0, {});
            outcomes.set(row, entry);
            rows.push(row);
          } catch (error) {
            entry.reject(error);
          }
        }
        if (rows.length > 0) return rows;
      }
    };
    const onFinished = (row: RowState): void => {
      outcomes.get(row)?.resolve(this.resultOf(row));
      outcomes.delete(row);
    };
    for (;;) {
      try {
        await this.decodeLoop(pull, maxBatchSize, onFinished);
        return;
      } catch (error) {
        for (const entry of outcomes.values()) entry.reject(error);
        outcomes.clear();
      }
    }
  }

  /** True when greedy rows decode inside onnxruntime (generate_greedy.onnx) rather than step by step from here. */
  get decodesInGraph(): boolean {
    return this.useGreedyLoop;
  }

  /** The weights in-graph greedy rows decode with ('int8': generate_greedy.int8.onnx). */
  get greedyWeights(): CpuWeights {
    return this.greedyLoopFile === greedyInt8LoopFileName ? 'int8' : 'float32';
  }

  private loadGreedyLoop(): Promise<LoadedSession> {
    const loopPath = path.join(this.folder, this.greedyLoopFile);
    this.greedyLoop ??= loadSession(loopPath, `Greedy decoder ${this.greedyLoopFile}`, {
      ...this.sessionOptions,
      executionProvider: this.executionProvider,
      // A provider that cannot take the loop is reported below, not as a CPU fallback.
      logger: { warn: () => undefined },
    }).then((loaded) => {
      if (loaded.executionProvider !== this.executionProvider) {
        throw new CorruptModelError(loopPath, `the ${this.executionProvider} execution provider refused it`);
      }
      return loaded;
    });
    return this.greedyLoop;
  }

  /**
   * Decodes greedy rows in one session run of generate_greedy.onnx: the prompts left-padded into one prefill, then
   * an ONNX Loop of decode steps that ends when every row has produced a stop token or after the longest row's
   * budget. Only the chosen tokens come back; each row then takes its own tokens up to its stop (token or string)
   * or length, exactly as the host loop would for the same logits.
   */
  private async decodeInGraph(rows: readonly RowState[], onFinished: (row: RowState) => void): Promise<void> {
    const { session } = await this.loadGreedyLoop();
    const startedAt = performance.now();
    const size = rows.length;
    const width = Math.max(...rows.map((row) => row.promptIds.length));
    const ids = new BigInt64Array(size * width).fill(BigInt(this.description.padTokenId));
    const mask = new BigInt64Array(size * width);
    const positions = new BigInt64Array(size * width);
    rows.forEach((row, rowIndex) => {
      row.startedAt = startedAt;
      const padding = width - row.promptIds.length;
      row.promptIds.forEach((token, index) => {
        const at = rowIndex * width + padding + index;
        ids[at] = BigInt(token);
        mask[at] = 1n;
        positions[at] = BigInt(index);
      });
    });
    const steps = Math.max(
      ...rows.map((row) => Math.min(row.parameters.maxNewTokens, this.description.maxPositions - row.promptIds.length)),
    );
    const eos = this.description.eosTokenIds.length > 0 ? this.description.eosTokenIds : [-1];
    let outputs: ort.InferenceSession.ReturnType;
    try {
      outputs = await session.run({
        prompt_ids: new ort.Tensor('int64', ids, [size, width]),
        prompt_attention_mask: new ort.Tensor('int64', mask, [size, width]),
        prompt_position_ids: new ort.Tensor('int64', positions, [size, width]),
        max_new_tokens: new ort.Tensor('int64', BigInt64Array.of(BigInt(steps)), []),
        eos_token_ids: new ort.Tensor('int64', BigInt64Array.from(eos, BigInt), [eos.length]),
        pad_token_id: new ort.Tensor('int64', BigInt64Array.of(BigInt(this.description.padTokenId)), []),
      });
    } catch (error) {
      throw new InferenceRunError(path.join(this.folder, this.greedyLoopFile), error);
    }
    const tokens = outputs.tokens as ort.Tensor;
    const data = tokens.data as BigInt64Array;
    const ranSteps = tokens.dims[0];
    rows.forEach((row, rowIndex) => {
      row.peakBatchSize = Math.max(row.peakBatchSize, size);
      for (let step = 0; step < ranSteps && row.finishReason === undefined; step++) {
        this.acceptToken(row, Number(data[step * size + rowIndex]));
      }
      // The loop stops only when every row has stopped or the budget is spent, so a row is finished here.
      row.finishReason ??= 'length';
      onFinished(row);
    });
  }

  /**
   * Decodes greedy rows in the PyTorch engine: one left-padded prefill, then decode steps until every row has a stop
   * token or has spent its budget. Tokens come back a chunk at a time; each row takes its own up to its stop (token
   * or string) or length, exactly as the host loop would, streaming them as they arrive and finishing as soon as it
   * stops. After each chunk, up to `maxBatchSize` rows in all: more rows are pulled and sent, and the engine puts
   * them into free rows of its running batch (continuous batching). Resolves once every row sent has finished, with
   * the pulled rows the engine does not serve (for the host loop).
   */
  private async decodeWithTorchEngine(
    rows: readonly RowState[],
    onFinished: (row: RowState) => void,
    pull: (capacity: number) => RowState[],
    maxBatchSize: number,
  ): Promise<RowState[]> {
    const engine = await torchDecodeEngine(this.folder, this.torchEngineOptions as TorchEngineOptions);
    const running = new Set<RowState>();
    const deferred: RowState[] = [];
    const runs: Promise<void>[] = [];
    const send = (group: readonly RowState[]) => {
      const startedAt = performance.now();
      let first = true;
      for (const row of group) {
        row.startedAt = startedAt;
        running.add(row);
      }
      const onTokens = (tokens: number[][], sharing: number) => {
        if (first) {
          const prefillMs = performance.now() - startedAt;
          group.forEach((row) => (row.prefillMs = prefillMs));
          first = false;
        }
        group.forEach((row, rowIndex) => {
          row.peakBatchSize = Math.max(row.peakBatchSize, sharing);
          for (const token of tokens[rowIndex]) {
            if (row.finishReason !== undefined) break;
            this.acceptToken(row, token);
          }
          if (row.finishReason !== undefined && running.delete(row)) onFinished(row);
        });
        const capacity = maxBatchSize - running.size;
        if (capacity > 0 && deferred.length === 0) {
          const more = pull(capacity);
          const served = more.filter(fitsTorchEngine);
          deferred.push(...more.filter((row) => !fitsTorchEngine(row)));
          if (served.length > 0) send(served);
        }
      };
      runs.push(
        engine
          .generate(
            {
              prompts: group.map((row) => row.promptIds),
              maxNewTokens: group.map((row) =>
                Math.min(row.parameters.maxNewTokens, this.description.maxPositions - row.promptIds.length),
              ),
              eosTokenIds: this.description.eosTokenIds,
              padTokenId: this.description.padTokenId,
            },
            onTokens,
          )
          .then(
            () => {
              // The engine ends a request once each of its rows has a stop token or has spent its budget.
              for (const row of group) {
                if (!running.delete(row)) continue;
                row.finishReason ??= 'length';
                onFinished(row);
              }
            },
            (error: unknown) => {
              failure ??= error;
            },
          ),
      );
    };
    let failure: unknown;
    send(rows);
    // Requests sent while awaiting are appended to `runs`: wait for those too.
    for (let index = 0; index < runs.length; index++) await runs[index];
    if (failure !== undefined) throw failure;
    return deferred;
  }

  /** Picks the row's next token from its logits at `offset`, with stop tokens masked before minNewTokens. */
  private chooseToken(row: RowState, logits: Float32Array, offset: number): number {
    if (row.generated.length < row.parameters.minNewTokens) {
      for (const eosTokenId of this.description.eosTokenIds) logits[offset + eosTokenId] = -Infinity;
    }
    return sampleToken(logits, offset, this.description.vocabularySize, row.sampling, row.random);
  }

  /** Appends a token to a row, updates its text and stream, and decides whether the row is finished. */
  private acceptToken(row: RowState, token: number): void {
    row.generated.push(token);
    row.nextPosition += 1;
    const { stopStrings, maxNewTokens } = row.parameters;
    let text = this.tokenizer.decode(row.generated, { skipSpecialTokens: true });
    if (this.description.eosTokenIds.includes(token)) row.finishReason = 'stop';
    if (stopStrings.length > 0) {
      let cut = -1;
      for (const stop of stopStrings) {
        const found = text.indexOf(stop, Math.max(0, row.emittedLength - stop.length));
        if (found >= 0 && (cut < 0 || found < cut)) cut = found;
      }
      if (cut >= 0) {
        text = text.slice(0, cut);
        row.finishReason = 'stop';
      }
    }
    if (row.finishReason === undefined) {
      if (row.generated.length >= maxNewTokens || row.nextPosition >= this.description.maxPositions) {
        row.finishReason = 'length';
      }
    }
    row.text = text;
    // While the row runs, hold back an incomplete UTF-8 character and anything that may become a stop string.
    let ready = text.length;
    if (row.finishReason === undefined) {
      if (text.endsWith('\ufffd')) ready = Math.min(ready, text.length - 1);
      ready -= pendingStopPrefixLength(text.slice(0, ready), stopStrings);
    }
    const delta = ready > row.emittedLength ? text.slice(row.emittedLength, ready) : '';
    if (ready > row.emittedLength) row.emittedLength = ready;
    row.onToken?.({ requestIndex: row.requestIndex, tokenId: token, text: delta });
  }
}

/**
 * Loads a chat model folder (model.onnx, tokenizer.json, tokenizer_config.json, weft-model.json or config.json).
 * The ONNX session is shared by every caller in the process that loads the same weights.
 */
export async function loadChatModel(folder: string, options: ChatModelOptions = {}): Promise<ChatModelRuntime> {
  requireModelFolder(folder, 'Chat model');
  const description = readCausalLanguageModelDescription(folder);
  const tokenizer = Tokenizer.fromFolder(folder);
  const chatTemplate = ChatTemplate.fromFolder(folder);
  const loaded = await loadSession(path.join(folder, 'model.onnx'), 'Chat model file model.onnx', options);
  const runtime = new ChatModelRuntime(loaded, tokenizer, chatTemplate, description, options, path.resolve(folder));
  // The engine is started (weights loaded and checked) now, so a model it cannot serve fails here, not mid-request.
  if (runtime.decodeEngine === 'torch') await runtime.startTorchEngine();
  return runtime;
}
