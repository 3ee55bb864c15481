import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The one typed SQL layer both backends implement, so the store's query code is written once.
 * Statements use `?` placeholders; the PostgreSQL adapter rewrites them to `$1, $2, …`.
 */

export type SqlValue = string | number | null;
export type SqlParameters = readonly SqlValue[];
export type SqlDialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  readonly dialect: SqlDialect;
  /** Runs a statement that returns rows (SELECT, or INSERT … RETURNING). */
  query<Row extends object>(sql: string, parameters?: SqlParameters): Promise<Row[]>;
  /** Runs a statement for its effect; `changes` is the number of rows inserted, updated or deleted. */
  execute(sql: string, parameters?: SqlParameters): Promise<{ changes: number }>;
}

export interface SqlTransaction extends SqlExecutor {
  /**
   * Serialises transactions that touch the same key until this transaction ends. PostgreSQL takes a
   * transaction-scoped advisory lock; SQLite already holds the database write lock (BEGIN IMMEDIATE).
   */
  lock(key: string): Promise<void>;
}

export interface SqlDatabase extends SqlExecutor {
  /**
   * Runs `work` in one transaction and commits it, or rolls back when it throws. Transient conflicts
   * (SQLITE_BUSY, serialization failures, deadlocks) re-run `work` from the start, so it must not keep
   * side effects outside the transaction other than idempotent ones.
   */
  transaction<T>(work: (transaction: SqlTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * A subquery yielding the strings of one JSON-array parameter (`["a","b",…]`), so one statement can take
 * thousands of keys on both backends instead of thousands of `?` placeholders.
 */
export function jsonArrayElements(dialect: SqlDialect): string {
  return dialect === 'sqlite' ? 'SELECT value FROM json_each(?)' : 'SELECT jsonb_array_elements_text(CAST(? AS jsonb))';
}

/** Backoff between retries of a conflicting transaction: grows with the attempt, with jitter so writers spread out. */
export function retryDelayMilliseconds(attempt: number): number {
  const base = Math.min(200, 5 * 2 ** attempt);
  return base / 2 + Math.random() * base;
}

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/**
 * Notices a statement sent to the database object while the same async flow holds a transaction: on SQLite it would
 * wait for the transaction forever, on PostgreSQL it would run outside it. Code inside `transaction` must use its executor.
 */
export class TransactionScope {
  private readonly storage = new AsyncLocalStorage<true>();

  run<T>(work: () => Promise<T>): Promise<T> {
    return this.storage.run(true, work);
  }

  assertOutside(): void {
    if (this.storage.getStore()) {
      throw new Error(
        'A lineage-store statement was sent to the database while this async flow holds a transaction; use the transaction passed to the callback.',
      );
    }
  }
}

/** Serialises async work on one connection: better-sqlite3 has one connection per store, so transactions must not interleave. */
export class AsyncMutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }
}
