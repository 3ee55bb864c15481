import { WeftError } from '../common/errors';

/**
 * The W&B server could not take a write now: unreachable, timed out, 5xx, 429. Retrying the same write later can
 * succeed (every remote write is idempotent), so the activity retries with backoff and the run waits.
 */
export class WandbUnavailableError extends WeftError {
  readonly retryable = true;
}

/** The W&B server refused the API key (401) or the key may not write where weft writes (403): a person must act. */
export class WandbAuthError extends WeftError {
  readonly retryable = false;
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The W&B server answered a write with an error a retry cannot fix (bad request, unknown field, conflict). */
export class WandbRequestError extends WeftError {
  readonly retryable = false;
}

/** The `production` alias of the remote collection points at a version this run did not compare against. */
export class WandbAliasConflictError extends WeftError {
  readonly retryable = false;
}

/** WANDB_* configuration is missing or malformed; says which variable and what to set. */
export class WandbConfigError extends WeftError {
  readonly retryable = false;
}
