import crypto from 'node:crypto';
import pg from 'pg';
import { StoreBusyError, StoreConfigurationError, StoreUnavailableError } from '../errors';
import {
  TransactionScope,
  retryDelayMilliseconds,
  sleep,
  type SqlDatabase,
  type SqlParameters,
  type SqlTransaction,
} from './sql-database';

const MAX_TRANSACTION_ATTEMPTS = 10;
/** Serialization failure, deadlock, and a unique violation from a concurrent insert of the same key: re-running resolves them. */
const TRANSIENT_CODES = new Set(['40001', '40P01', '23505']);
const CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004']);

const translatedStatements = new Map<string, string>();

/** Rewrites `?` placeholders to `$1, $2, …`, leaving question marks inside quoted strings alone. */
export function toPostgresPlaceholders(sql: string): string {
  const cached = translatedStatements.get(sql);
  if (cached !== undefined) return cached;
  let index = 0;
  let inQuote = false;
  let translated = '';
  for (const character of sql) {
    if (character === "'") inQuote = !inQuote;
    translated += character === '?' && !inQuote ? `$${++index}` : character;
  }
  translatedStatements.set(sql, translated);
  return translated;
}

/** BIGINT and COUNT(*) come back as numbers: the store keeps sizes and counts well under 2^53. */
const typeParsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function advisoryKey(key: string): string {
  return crypto.createHash('sha256').update(key).digest().readBigInt64BE(0).toString();
}

function classify(error: unknown, url: string): unknown {
  const code = (error as { code?: string }).code ?? '';
  if (CONNECTION_CODES.has(code) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND'].includes(code)) {
    return new StoreUnavailableError(
      `The PostgreSQL lineage store at ${url} cannot be reached (${code}: ${(error as Error).message}); check that the server runs and the URL is right.`,
      { cause: error },
    );
  }
  if (code === '3D000' || code === '28P01' || code === '28000') {
    return new StoreConfigurationError(
      `The PostgreSQL lineage URL ${url} is not usable: ${(error as Error).message}.`,
      {
        cause: error,
      },
    );
  }
  return error;
}

/** PostgreSQL through a small pg pool; `?schema=name` in the URL selects (and creates) a schema, which keeps test runs apart. */
export class PostgresDatabase implements SqlDatabase {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly displayUrl: string;
  private readonly scope = new TransactionScope();
  readonly schema: string | undefined;

  constructor(url: string) {
    const parsed = new URL(url);
    this.schema = parsed.searchParams.get('schema') ?? undefined;
    parsed.searchParams.delete('schema');
    if (this.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(this.schema)) {
      throw new StoreConfigurationError(
        `The schema "${this.schema}" in the lineage URL is not allowed; use lower-case letters, digits and "_" (at most 63).`,
      );
    }
    parsed.password = parsed.password ? '***' : '';
    this.displayUrl = parsed.toString();
    parsed.password = new URL(url).password;
    this.pool = new pg.Pool({
      connectionString: parsed.toString(),
      max: 4,
      types: typeParsers,
      ...(this.schema === undefined ? {} : { options: `-c search_path=${this.schema}` }),
    });
    // An idle client that loses its server must not crash the process; the next query reports it.
    this.pool.on('error', () => undefined);
  }

  /** Creates the URL's schema when it names one; the migrations then create tables inside it. */
  async prepare(): Promise<void> {
    if (this.schema === undefined) return;
    await this.execute(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`).catch(async (error: unknown) => {
      // Two processes creating the schema at once: one wins, the other sees a unique violation.
      if (!['23505', '42P06'].includes((error as { code?: string }).code ?? '')) throw error;
    });
  }

  async query<Row extends object>(sql: string, parameters: SqlParameters = []): Promise<Row[]> {
    this.scope.assertOutside();
    try {
      const result = await this.pool.query(toPostgresPlaceholders(sql), parameters as unknown[]);
      return result.rows as Row[];
    } catch (error) {
      throw classify(error, this.displayUrl);
    }
  }

  async execute(sql: string, parameters: SqlParameters = []): Promise<{ changes: number }> {
    this.scope.assertOutside();
    try {
      const result = await this.pool.query(toPostgresPlaceholders(sql), parameters as unknown[]);
      return { changes: result.rowCount ?? 0 };
    } catch (error) {
      throw classify(error, this.displayUrl);
    }
  }

  async transaction<T>(work: (transaction: SqlTransaction) => Promise<T>): Promise<T> {
    this.scope.assertOutside();
    for (let attemptNumber = 1; ; attemptNumber++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (error) {
        throw classify(error, this.displayUrl);
      }
      let broken = false;
      try {
        await client.query('BEGIN');
        const transaction: SqlTransaction = {
          dialect: 'postgres',
          query: async <Row extends object>(sql: string, parameters: SqlParameters = []) =>
            (await client.query(toPostgresPlaceholders(sql), parameters as unknown[])).rows as Row[],
          execute: async (sql: string, parameters: SqlParameters = []) => ({
            changes: (await client.query(toPostgresPlaceholders(sql), parameters as unknown[])).rowCount ?? 0,
          }),
          lock: async (key: string) => {
            await client.query('SELECT pg_advisory_xact_lock($1)', [advisoryKey(key)]);
          },
        };
        const result = await this.scope.run(() => work(transaction));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        const code = (error as { code?: string }).code ?? '';
        if (!TRANSIENT_CODES.has(code)) throw classify(error, this.displayUrl);
        if (attemptNumber >= MAX_TRANSACTION_ATTEMPTS) {
          throw new StoreBusyError(
            `The PostgreSQL lineage store kept aborting a transaction on conflicts (${code}) after ${attemptNumber} attempts; retry later.`,
            { cause: error },
          );
        }
      } finally {
        client.release(broken);
      }
      await sleep(retryDelayMilliseconds(attemptNumber));
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
