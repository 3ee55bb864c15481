import { WeftError } from '../common/errors';

/**
 * Failures of the RAG runtime, one class per kind. `retryable` says whether the same call can succeed when
 * repeated; `type` (the class name) is what activities put on an ApplicationFailure, matched across processes.
 */
export abstract class RagError extends WeftError {}

/**
 * Longest question a RagModel takes, in characters. The chat models' context windows (1,024 positions for
 * the demo) hold far less; past this, the embedding graph's native code can overflow its stack on the text,
 * so a longer question is refused before any model sees it.
 */
export const maxQuestionCharacters = 8000;

/** A question longer than maxQuestionCharacters. */
export class QuestionTooLongError extends RagError {
  readonly retryable = false;
  constructor(
    readonly questionIndex: number,
    readonly characters: number,
  ) {
    super(
      `${questionIndex === 0 ? 'The question' : `Question ${questionIndex}`} has ${characters} characters; ` +
        `a question may have at most ${maxQuestionCharacters} (the model's context window holds far less). Shorten it.`,
    );
  }
}

/** A question is empty or only whitespace: there is nothing to retrieve or answer. */
export class EmptyQuestionError extends RagError {
  readonly retryable = false;
  constructor(readonly questionIndex: number) {
    super(
      questionIndex === 0
        ? 'The question is empty; ask something, e.g. `weft ask "What is the greenhouse effect?"`.'
        : `Question ${questionIndex} is empty; every question needs at least one non-space character.`,
    );
  }
}

/** A ref or selector does not name a RagModel (or names something that is not one). */
export class RagModelNotFoundError extends RagError {
  readonly retryable = false;
}

/** A stored object does not have the shape of the app object it is used as (a ChatModel where a Prompt belongs). */
export class InvalidAppObjectError extends RagError {
  readonly retryable = false;
}

/** Values given to publish an app object are out of range or of the wrong kind. */
export class InvalidAppObjectInputError extends RagError {
  readonly retryable = false;
}

/** The demo models have not been built (or WEFT_MODELS_DIR points elsewhere). */
export class DemoModelsMissingError extends RagError {
  readonly retryable = false;
  constructor(readonly missingPath: string) {
    super(
      `The demo models are not built: ${missingPath} is missing. Run \`bash scripts/setup.sh\` (it builds them into ` +
        '$WEFT_MODELS_DIR, default .weft/models), or set WEFT_MODELS_DIR to a folder that has them.',
    );
  }
}

/** The corpus to ingest cannot be read or has no usable documents. */
export class InvalidCorpusError extends RagError {
  readonly retryable = false;
}

/** A model artifact's cached copy does not match the artifact (altered on disk); it is fetched again once. */
export class ModelCacheCorruptError extends RagError {
  readonly retryable = true;
}

/** A model artifact lacks the files a runtime needs (model.onnx, tokenizer.json, weft-model.json). */
export class InvalidModelArtifactError extends RagError {
  readonly retryable = false;
}

/** A RagModel's collection alias does not exist in this vector store (never ingested here, or another store). */
export class CollectionAliasMissingError extends RagError {
  readonly retryable = false;
  constructor(
    readonly alias: string,
    ragModelRef: string,
    vectorStoreKind: string,
  ) {
    super(
      `The RagModel ${ragModelRef} reads the vector collection alias '${alias}', which does not exist in this ` +
        `${vectorStoreKind} store; ingest its corpus with \`weft ingest <corpus.jsonl or folder> --alias ${alias}\`, ` +
        'or point WEFT_HOME / WEFT_VECTOR_URL at the store it was built in.',
    );
  }
}
