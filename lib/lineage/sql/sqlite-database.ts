import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StorageFullError, StoreBusyError, StoreUnavailableError } from '../errors';
import {
  AsyncMutex,
  TransactionScope,
  retryDelayMilliseconds,
  sleep,
  type SqlDatabase,
  type SqlParameters,
  type SqlTransaction,
} from './sql-database';

export interface SqliteOptions {
  /** How long one statement waits for another process's write lock before SQLite reports SQLITE_BUSY. Default 5000 ms. */
  busyTimeoutMilliseconds?: number;
  /** Attempts of a whole transaction that keeps meeting SQLITE_BUSY before StoreBusyError. Default 12. */
  maxTransactionAttempts?: number;
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED';
}

/** SQLite through better-sqlite3: WAL so readers never block the writer, and several processes may write the same file. */
export class SqliteDatabase implements SqlDatabase {
  readonly dialect = 'sqlite' as const;
  private readonly database: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly mutex = new AsyncMutex();
  private readonly scope = new TransactionScope();

  private readonly maxTransactionAttempts: number;

  constructor(
    readonly filePath: string,
    options: SqliteOptions = {},
  ) {
    this.maxTransactionAttempts = options.maxTransactionAttempts ?? 12;
    try {
      fs.mkdirSync(path.dirname(filePath), { recursive: true });
      this.database = new Database(filePath, { timeout: options.busyTimeoutMilliseconds ?? 5_000 });
      this.database.pragma('journal_mode = WAL');
      this.database.pragma('synchronous = NORMAL');
      this.database.pragma('foreign_keys = ON');
    } catch (error) {
      throw new StoreUnavailableError(
        `Cannot open the SQLite lineage store at ${filePath}: ${(error as Error).message}. Check that the folder is writable.`,
        { cause: error },
      );
    }
  }

  private statement(sql: string): Database.Statement {
    let prepared = this.statements.get(sql);
    if (!prepared) {
      prepared = this.database.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  private runQuery<Row>(sql: string, parameters: SqlParameters): Row[] {
    return this.statement(sql).all(...parameters) as Row[];
  }

  private runExecute(sql: string, parameters: SqlParameters): { changes: number } {
    return { changes: this.statement(sql).run(...parameters).changes };
  }

  /** Autocommit statements also go through the mutex so they never run inside another caller's open transaction. */
  query<Row extends object>(sql: string, parameters: SqlParameters = []): Promise<Row[]> {
    this.scope.assertOutside();
    return this.mutex.run(() => this.withBusyRetry(async () => this.runQuery<Row>(sql, parameters)));
  }

  execute(sql: string, parameters: SqlParameters = []): Promise<{ changes: number }> {
    this.scope.assertOutside();
    return this.mutex.run(() => this.withBusyRetry(async () => this.runExecute(sql, parameters)));
  }

  transaction<T>(work: (transaction: SqlTransaction) => Promise<T>): Promise<T> {
    this.scope.assertOutside();
    return this.mutex.run(() =>
      this.withBusyRetry(async () => {
        // IMMEDIATE takes the write lock up front: a deferred transaction that upgrades later can fail with BUSY mid-way.
        this.database.exec('BEGIN IMMEDIATE');
        let open = true;
        const transaction: SqlTransaction = {
          dialect: 'sqlite',
          query: async <Row extends object>(sql: string, parameters: SqlParameters = []) => {
            if (!open)
              throw new Error('This transaction has already finished; run the statement in a new transaction.');
            return this.runQuery<Row>(sql, parameters);
          },
          execute: async (sql: string, parameters: SqlParameters = []) => {
            if (!open)
              throw new Error('This transaction has already finished; run the statement in a new transaction.');
            return this.runExecute(sql, parameters);
          },
          lock: async () => undefined,
        };
        try {
          const result = await this.scope.run(() => work(transaction));
          this.database.exec('COMMIT');
          return result;
        } catch (error) {
          if (this.database.inTransaction) this.database.exec('ROLLBACK');
          throw error;
        } finally {
          open = false;
        }
      }),
    );
  }

  private async withBusyRetry<T>(attempt: () => Promise<T>): Promise<T> {
    for (let attemptNumber = 1; ; attemptNumber++) {
      try {
        return await attempt();
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_FULL') {
          throw new StorageFullError(
            `The disk holding the SQLite lineage store ${this.filePath} is full; the transaction was rolled back. Free space there and run the command again (a pipeline step retries it for a few minutes first, then fails with this message).`,
            { cause: error },
          );
        }
        if (!isBusy(error)) throw error;
        if (attemptNumber >= this.maxTransactionAttempts) {
          throw new StoreBusyError(
            `The SQLite lineage store ${this.filePath} stayed locked by other writers after ${attemptNumber} attempts; retry later or use PostgreSQL for many concurrent writers.`,
            { cause: error },
          );
        }
        await sleep(retryDelayMilliseconds(attemptNumber));
      }
    }
  }

  async close(): Promise<void> {
    await this.mutex.run(async () => {
      this.statements.clear();
      if (this.database.open) this.database.close();
    });
  }
}
