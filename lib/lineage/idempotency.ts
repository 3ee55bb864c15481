import { IdempotencyKeyReuseError, InvalidValueError } from './errors';
import { canonicalJson, stringDigest } from './digest';
import type { SqlTransaction } from './sql/sql-database';

/**
 * Idempotency for operations a retry could repeat (create a run, add feedback, log, link).
 * The key and the operation's result are stored in the same transaction as the operation, so a
 * retried activity — in this process or another — gets the first result back instead of a second thing.
 */

/** Builds a key the way the architecture asks: from the workflow id, the step and the content digest. */
export function idempotencyKeyFor(workflowId: string, step: string, contentDigest = ''): string {
  return [workflowId, step, contentDigest].join(':');
}

function validateKey(key: string): void {
  if (key.length === 0 || key.length > 512) {
    throw new InvalidValueError(
      `The idempotency key must be 1-512 characters, got ${key.length}; derive it from (workflow id, step, content digest).`,
    );
  }
}

/** Runs `work` once per key inside `transaction`; later calls with the same key and request return the stored result. */
export async function runOnce<T>(
  transaction: SqlTransaction,
  key: string | undefined,
  operation: string,
  request: unknown,
  work: () => Promise<T>,
): Promise<T> {
  if (key === undefined) return work();
  validateKey(key);
  await transaction.lock(`idempotency:${key}`);
  const requestDigest = stringDigest(canonicalJson(request));
  const [existing] = await transaction.query<{ operation: string; request_digest: string; result_json: string }>(
    'SELECT operation, request_digest, result_json FROM idempotency_keys WHERE idempotency_key = ?',
    [key],
  );
  if (existing) {
    if (existing.operation !== operation || existing.request_digest !== requestDigest) {
      throw new IdempotencyKeyReuseError(
        `The idempotency key "${key}" was first used for a different ${existing.operation} request; use a new key for a different request (derive it from the content digest).`,
      );
    }
    return JSON.parse(existing.result_json) as T;
  }
  const result = await work();
  await transaction.execute(
    'INSERT INTO idempotency_keys (idempotency_key, operation, request_digest, result_json, created_at) VALUES (?, ?, ?, ?, ?)',
    [key, operation, requestDigest, JSON.stringify(result ?? null), new Date().toISOString()],
  );
  return result;
}

/**
 * In-process de-duplication: concurrent calls with the same key share one promise, and a finished
 * result is remembered (up to `capacity` keys), so a caller retrying inside one process does the work once.
 */
export class InProcessIdempotency {
  private readonly results = new Map<string, Promise<unknown>>();

  constructor(private readonly capacity = 10_000) {}

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const existing = this.results.get(key);
    if (existing) return existing as Promise<T>;
    const pending = work().catch((error: unknown) => {
      // A failure is not a result: the next attempt must run the work again.
      this.results.delete(key);
      throw error;
    });
    this.results.set(key, pending);
    if (this.results.size > this.capacity) this.results.delete(this.results.keys().next().value as string);
    return pending;
  }
}
