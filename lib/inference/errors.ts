/**
 * Failures of the inference layer, one class per kind. Each knows whether retrying can help, and
 * `type` is the string activities put on an ApplicationFailure so callers match on it across processes.
 */
export abstract class InferenceError extends Error {
  abstract readonly retryable: boolean;
  abstract readonly type: string;
}

const buildHint =
  'Build the demo models with `bash scripts/setup.sh`, or set WEFT_MODELS_DIR to a folder that has them.';

/** A model folder or one of its files is absent: nothing will appear by retrying. */
export class ModelFileNotFoundError extends InferenceError {
  readonly retryable = false;
  readonly type = 'ModelFileNotFoundError';
  constructor(
    readonly missingPath: string,
    what: string,
  ) {
    super(`${what} not found at ${missingPath}. ${buildHint}`);
    this.name = 'ModelFileNotFoundError';
  }
}

/** A model file exists but cannot be parsed or loaded (truncated download, wrong format). */
export class CorruptModelError extends InferenceError {
  readonly retryable = false;
  readonly type = 'CorruptModelError';
  constructor(
    readonly modelPath: string,
    reason: string,
  ) {
    super(`Cannot load ${modelPath}: ${reason}. Rebuild it with \`bash scripts/setup.sh\` or re-export the model.`);
    this.name = 'CorruptModelError';
  }
}

/** The ONNX graph does not have the inputs or outputs weft feeds (a different export convention). */
export class ModelSignatureMismatchError extends InferenceError {
  readonly retryable = false;
  readonly type = 'ModelSignatureMismatchError';
  constructor(
    readonly modelPath: string,
    readonly kind: 'inputs' | 'outputs',
    readonly expected: readonly string[],
    readonly found: readonly string[],
  ) {
    super(
      `${modelPath} has the wrong ${kind}: expected [${expected.join(', ')}], found [${found.join(', ')}]. ` +
        'Export it with the Optimum decoder-with-past convention (trainer export) or rebuild with `bash scripts/setup.sh`.',
    );
    this.name = 'ModelSignatureMismatchError';
  }
}

/** A tensor or vector does not have the size the model description promises. */
export class DimensionMismatchError extends InferenceError {
  readonly retryable = false;
  readonly type = 'DimensionMismatchError';
  constructor(
    readonly what: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(
      `${what}: expected ${expected}, got ${actual}. The model folder's weft-model.json (or config.json) does not ` +
        'match model.onnx; re-export the model.',
    );
    this.name = 'DimensionMismatchError';
  }
}

/** tokenizer.json names a model, normaliser, pre-tokenizer, post-processor or decoder weft does not implement. */
export class UnsupportedTokenizerError extends InferenceError {
  readonly retryable = false;
  readonly type = 'UnsupportedTokenizerError';
  constructor(
    readonly component: string,
    readonly componentType: string,
    readonly supported: readonly string[],
  ) {
    super(
      `Unsupported tokenizer ${component} type "${componentType}"; weft supports ${supported.join(', ')}. ` +
        'Use a tokenizer.json with a BPE or WordPiece model.',
    );
    this.name = 'UnsupportedTokenizerError';
  }
}

/** A request with nothing to generate from or embed. */
export class EmptyPromptError extends InferenceError {
  readonly retryable = false;
  readonly type = 'EmptyPromptError';
  constructor(readonly requestIndex: number) {
    super(`Request ${requestIndex} has an empty prompt; give it at least one message or one non-empty text.`);
    this.name = 'EmptyPromptError';
  }
}

/** The prompt plus the tokens asked for do not fit in the model's context window. */
export class ContextLengthExceededError extends InferenceError {
  readonly retryable = false;
  readonly type = 'ContextLengthExceededError';
  constructor(
    readonly requestIndex: number,
    readonly promptTokens: number,
    readonly maxNewTokens: number,
    readonly maxPositions: number,
  ) {
    super(
      `Request ${requestIndex}: ${promptTokens} prompt tokens + ${maxNewTokens} new tokens exceed the model's ` +
        `${maxPositions} positions; shorten the prompt (fewer retrieved passages) or lower max_new_tokens.`,
    );
    this.name = 'ContextLengthExceededError';
  }
}

/**
 * More characters than any tokenisation of them could fit in the model's positions (a token holds at most
 * `maxCharactersPerToken` characters): refused before the tokenizer sees a megabyte of text.
 */
export class PromptTooLongError extends InferenceError {
  readonly retryable = false;
  readonly type = 'PromptTooLongError';
  constructor(
    readonly requestIndex: number,
    readonly characters: number,
    readonly maxCharacters: number,
    readonly maxPositions: number,
  ) {
    super(
      `Request ${requestIndex}: the prompt has ${characters} characters; the model's ${maxPositions} positions hold ` +
        `at most about ${maxCharacters}. Shorten the question (or the passages put in the prompt).`,
    );
    this.name = 'PromptTooLongError';
  }
}

/** No token of the shipped tokenizers spans more characters than this; a bound used before tokenising. */
export const maxCharactersPerToken = 16;

/** Generation parameters outside their valid range. */
export class InvalidGenerationOptionsError extends InferenceError {
  readonly retryable = false;
  readonly type = 'InvalidGenerationOptionsError';
  constructor(problem: string) {
    super(`Invalid generation options: ${problem}.`);
    this.name = 'InvalidGenerationOptionsError';
  }
}

/** onnxruntime failed while running a loaded model (out of memory, device lost): another attempt may succeed. */
export class InferenceRunError extends InferenceError {
  readonly retryable = true;
  readonly type = 'InferenceRunError';
  constructor(
    readonly modelPath: string,
    cause: unknown,
  ) {
    super(`onnxruntime failed running ${modelPath}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'InferenceRunError';
    this.cause = cause;
  }
}

/**
 * WEFT_ENGINE=torch cannot serve this model here: no Hugging Face weights beside the ONNX files, no Python with
 * PyTorch, a CUDA device PyTorch does not see, or a model the engine does not implement. Retrying will not help.
 */
export class DecodeEngineUnavailableError extends InferenceError {
  readonly retryable = false;
  readonly type = 'DecodeEngineUnavailableError';
  constructor(
    readonly modelFolder: string,
    reason: string,
  ) {
    super(`The PyTorch decode engine (WEFT_ENGINE=torch) cannot serve ${modelFolder}: ${reason}`);
    this.name = 'DecodeEngineUnavailableError';
  }
}

/** The PyTorch decode engine's process failed a request or exited while decoding; a new process is started next time. */
export class DecodeEngineRunError extends InferenceError {
  readonly retryable = true;
  readonly type = 'DecodeEngineRunError';
  constructor(
    readonly modelFolder: string,
    reason: string,
  ) {
    super(`The PyTorch decode engine failed on ${modelFolder}: ${reason}`);
    this.name = 'DecodeEngineRunError';
  }
}
