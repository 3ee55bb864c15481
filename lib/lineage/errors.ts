import { WeftError } from '../common/errors';

/**
 * One error class per failure kind. Each says whether retrying the same call can succeed, so the
 * Temporal boundary can map it to a retryable or non-retryable ApplicationFailure by `type` (the class name).
 */
export abstract class LineageError extends WeftError {}

/** A ref string does not have one of the four accepted forms. */
export class InvalidRefError extends LineageError {
  readonly retryable = false;
}

/** An entity, project, artifact, object, registry, collection or alias name breaks the naming rules. */
export class InvalidNameError extends LineageError {
  readonly retryable = false;
}

/** A value cannot be stored (not JSON-representable, circular, a bad file path, a bad reference URI). */
export class InvalidValueError extends LineageError {
  readonly retryable = false;
}

/** A value, row or file is over the store's size limit. */
export class ValueTooLargeError extends LineageError {
  readonly retryable = false;
}

/** A ref, version, alias, run, call or registry does not exist. */
export class NotFoundError extends LineageError {
  readonly retryable = false;
}

/** An artifact's type does not match its collection (or the registry's accepted types). */
export class ArtifactTypeMismatchError extends LineageError {
  readonly retryable = false;
}

/** A compare-and-set alias move found the alias somewhere other than where the caller expected. */
export class AliasConflictError extends LineageError {
  readonly retryable = false;
  constructor(
    message: string,
    /** Where the alias points now (a version number), or null when it is unassigned. */
    readonly actualVersion: number | null,
  ) {
    super(message);
  }
}

/** A stored blob no longer matches its digest: the file was altered or truncated on disk. */
export class CorruptBlobError extends LineageError {
  readonly retryable = false;
}

/** An idempotency key was reused for a different request. */
export class IdempotencyKeyReuseError extends LineageError {
  readonly retryable = false;
}

/** The database stayed locked or kept aborting the transaction after the store's own retries. */
export class StoreBusyError extends LineageError {
  readonly retryable = true;
}

/** The database could not be reached or the connection dropped. */
export class StoreUnavailableError extends LineageError {
  readonly retryable = true;
}

/** The lineage URL or the store's options are wrong, or the database schema is newer than this code. */
export class StoreConfigurationError extends LineageError {
  readonly retryable = false;
}

/**
 * The disk under the store is full (ENOSPC) or over quota (EDQUOT). Retryable: once space is freed the same call
 * succeeds, so a Temporal activity waits and resumes; nothing half-written is kept under a final name.
 */
export class StorageFullError extends LineageError {
  readonly retryable = true;
}

/** ENOSPC / EDQUOT as a StorageFullError naming where; any other error unchanged. */
export function storageFullOr(error: unknown, where: string): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return error;
  return new StorageFullError(
    `The disk holding ${where} is full (${code}); nothing half-written was kept. Free space there and run the command again (a pipeline step retries it for a few minutes first, then fails with this message).`,
    { cause: error },
  );
}
