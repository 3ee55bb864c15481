import { WeftError } from '../common/errors';

/**
 * One class per failure kind. `retryable` tells an activity whether Temporal should retry; `name` is the
 * failure type string matched across process boundaries (never `instanceof` there).
 */
export abstract class VectorStoreError extends WeftError {}

export class CollectionNotFoundError extends VectorStoreError {
  readonly retryable = false;
  constructor(readonly collection: string) {
    super(
      `Vector collection '${collection}' does not exist (and no alias has that name); ` +
        'create it first, or check the collection alias in the RagModel.',
    );
  }
}

export class CollectionConfigMismatchError extends VectorStoreError {
  readonly retryable = false;
  constructor(
    readonly collection: string,
    existing: string,
    requested: string,
  ) {
    super(
      `Vector collection '${collection}' already exists with ${existing}, not the requested ${requested}; ` +
        'use recreateCollection to replace it, or choose another name.',
    );
  }
}

export class InvalidCollectionNameError extends VectorStoreError {
  readonly retryable = false;
  constructor(name: unknown, reason: string) {
    super(`Invalid vector collection or alias name ${JSON.stringify(name)}: ${reason}.`);
  }
}

export class VectorAliasConflictError extends VectorStoreError {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
  }
}

export class VectorDimensionMismatchError extends VectorStoreError {
  readonly retryable = false;
  constructor(
    readonly collection: string,
    readonly expected: number,
    readonly actual: number,
    what: string,
  ) {
    super(
      `${what} has ${actual} dimensions but vector collection '${collection}' holds ${expected}-dimensional vectors; ` +
        'embed with the model the collection was built with, or rebuild the collection.',
    );
  }
}

export class InvalidVectorError extends VectorStoreError {
  readonly retryable = false;
  constructor(what: string, reason: string) {
    super(`${what} is not a valid vector: ${reason}.`);
  }
}

export class InvalidPointIdError extends VectorStoreError {
  readonly retryable = false;
  constructor(id: unknown) {
    super(
      `Point id ${JSON.stringify(id)} is not a UUID; weft point ids are UUIDs such as ` +
        "'0f8fad5b-d9cb-469f-a165-70867728950e' (derive one from the content digest).",
    );
  }
}

export class InvalidPayloadError extends VectorStoreError {
  readonly retryable = false;
  constructor(id: string, reason: string) {
    super(`Payload of point '${id}' is invalid: ${reason}.`);
  }
}

export class InvalidQueryError extends VectorStoreError {
  readonly retryable = false;
  constructor(reason: string) {
    super(`Invalid vector query: ${reason}.`);
  }
}

export class InvalidVectorParamsError extends VectorStoreError {
  readonly retryable = false;
  constructor(reason: string) {
    super(`Invalid vector collection params: ${reason}.`);
  }
}

/** The filter is malformed (wrong types, empty key, …). */
export class InvalidFilterError extends VectorStoreError {
  readonly retryable = false;
  constructor(path: string, reason: string) {
    super(`Invalid filter at ${path}: ${reason}.`);
  }
}

/** The filter is valid Qdrant but outside the subset weft honours exactly; it is rejected rather than dropped. */
export class UnsupportedFilterError extends VectorStoreError {
  readonly retryable = false;
  constructor(path: string, construct: string) {
    super(
      `Unsupported filter at ${path}: ${construct} is not supported by weft's vector stores ` +
        '(supported: must/should/must_not with match value, match any, range, has_id and nested filters).',
    );
  }
}

export class SnapshotError extends VectorStoreError {
  readonly retryable = false;
  constructor(filePath: string, reason: string, options?: { cause?: unknown }) {
    super(`Vector snapshot '${filePath}': ${reason}.`, options);
  }
}

export class IncompatibleVectorStoreError extends VectorStoreError {
  readonly retryable = false;
  constructor(filePath: string, found: number, supported: number) {
    super(
      `Vector store file '${filePath}' has layout version ${found}, but this weft reads version ${supported}; ` +
        'open it with the weft version that wrote it, or rebuild the collections into a new file.',
    );
  }
}

/** The store could not be reached or was busy; retrying later may succeed. */
export class VectorStoreUnavailableError extends VectorStoreError {
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
