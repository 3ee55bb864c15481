import { canonicalJson, stringDigest, tableDigest } from './digest';
import { InvalidValueError, NotFoundError, ValueTooLargeError } from './errors';
import { formatRef, parseRefOfKind } from './refs';
import { parseJson, resolveProject, timestamp, type StoreContext } from './store-context';
import { jsonArrayElements, type SqlExecutor } from './sql/sql-database';

/** Rows per insert statement: well under both backends' parameter limits. */
const CHUNK = 400;
/** Digests per lookup statement (passed as one JSON array parameter). */
const LOOKUP_CHUNK = 5000;

export interface TableCreateInput {
  entity?: string;
  project?: string;
  rows: readonly Record<string, unknown>[];
  /** A table whose rows are known to be stored already (the previous version): their digests skip the existence check. */
  knownTableRef?: string;
}

export interface TablePatchInput {
  /** The table to start from: `weave:///<entity>/<project>/table/<digest>`. */
  tableRef: string;
  /** Rows to replace, by index in the base table. */
  replace?: Record<number, Record<string, unknown>>;
  /** Indexes (in the base table) of rows to drop. */
  remove?: number[];
  /** Rows to add at the end. */
  append?: readonly Record<string, unknown>[];
}

export interface TableCreateResult {
  ref: string;
  digest: string;
  rowCount: number;
  rowDigests: string[];
  /** Rows written by this call; 0 when every row was stored before. */
  newRowCount: number;
}

export interface TableRow {
  digest: string;
  value: Record<string, unknown>;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
}

/**
 * Weave tables: each row stored once by its digest, a table is the ordered list of row digests.
 * Publishing a 100k-row dataset again after one row changed hashes every row but writes one.
 */
export class TableStore {
  constructor(private readonly context: StoreContext) {}

  /** Stores rows (those not stored yet) and the table; returns the table ref `weave:///<entity>/<project>/table/<digest>`. */
  async create(input: TableCreateInput): Promise<TableCreateResult> {
    const { entity, project, key } = resolveProject(this.context, input.entity, input.project);
    if (!Array.isArray(input.rows)) {
      throw new InvalidValueError('Table rows must be an array of plain objects, one per row.');
    }
    const texts: string[] = [];
    const rowDigests: string[] = [];
    input.rows.forEach((row, index) => {
      const text = this.rowText(row, index);
      texts.push(text);
      rowDigests.push(stringDigest(text));
    });
    const known = new Set<string>();
    if (input.knownTableRef !== undefined) {
      const knownRef = parseRefOfKind(input.knownTableRef, 'table');
      if (`${knownRef.entity}/${knownRef.project}` === key) {
        const [knownTable] = await this.context.database.query<{ row_digests_json: string }>(
          'SELECT row_digests_json FROM tables WHERE project = ? AND digest = ?',
          [key, knownRef.digest],
        );
        if (knownTable) for (const rowDigest of parseJson<string[]>(knownTable.row_digests_json)) known.add(rowDigest);
      }
    }
    const candidates = new Map<string, string>();
    rowDigests.forEach((rowDigest, index) => {
      if (!known.has(rowDigest)) candidates.set(rowDigest, texts[index]!);
    });
    return this.write(entity, project, rowDigests, candidates);
  }

  /**
   * A new table from an existing one and a few changes: only the replaced and appended rows are hashed and
   * written, so changing one row of a 100k-row table costs one row (plus the digest list). `remove` applies last.
   */
  async patch(input: TablePatchInput): Promise<TableCreateResult> {
    const ref = parseRefOfKind(input.tableRef, 'table');
    const base = await this.rowDigests(input.tableRef);
    const candidates = new Map<string, string>();
    const hashRow = (row: Record<string, unknown>, label: string): string => {
      const text = this.rowText(row, label);
      const digest = stringDigest(text);
      candidates.set(digest, text);
      return digest;
    };
    const next = [...base];
    for (const [indexText, row] of Object.entries(input.replace ?? {})) {
      const index = Number(indexText);
      if (!Number.isInteger(index) || index < 0 || index >= base.length) {
        throw new InvalidValueError(
          `Cannot replace row ${indexText}: the table has rows 0 … ${base.length - 1}. Use append for new rows.`,
        );
      }
      next[index] = hashRow(row, indexText);
    }
    const removed = new Set<number>();
    for (const index of input.remove ?? []) {
      if (!Number.isInteger(index) || index < 0 || index >= base.length) {
        throw new InvalidValueError(`Cannot remove row ${index}: the table has rows 0 … ${base.length - 1}.`);
      }
      removed.add(index);
    }
    const kept = removed.size === 0 ? next : next.filter((_, index) => !removed.has(index));
    (input.append ?? []).forEach((row, offset) => kept.push(hashRow(row, `appended ${offset}`)));
    return this.write(ref.entity, ref.project, kept, candidates);
  }

  private rowText(row: unknown, label: number | string): string {
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new InvalidValueError(
        `Table row ${label} is ${Array.isArray(row) ? 'an array' : typeof row}; every row must be a plain object such as {"question": …, "answer": …}.`,
      );
    }
    const text = canonicalJson(row);
    const size = Buffer.byteLength(text);
    if (size > this.context.limits.maxRowBytes) {
      throw new ValueTooLargeError(
        `Table row ${label} is ${size} bytes; the limit is ${this.context.limits.maxRowBytes}. Store large content as an artifact file and put its ref in the row.`,
      );
    }
    return text;
  }

  /** Writes the rows among `candidates` that are not stored yet, then the table (its ordered digest list). */
  private async write(
    entity: string,
    project: string,
    rowDigests: string[],
    candidates: Map<string, string>,
  ): Promise<TableCreateResult> {
    const key = `${entity}/${project}`;
    const digest = tableDigest(rowDigests);
    const newRowCount = await this.context.database.transaction(async (transaction) => {
      const [existingTable] = await transaction.query(
        'SELECT 1 AS present FROM tables WHERE project = ? AND digest = ?',
        [key, digest],
      );
      if (existingTable) return 0;
      const missing: [string, string][] = [];
      for (const group of chunks([...candidates.keys()], LOOKUP_CHUNK)) {
        const present = await transaction.query<{ digest: string }>(
          `SELECT digest FROM table_rows WHERE project = ? AND digest IN (${jsonArrayElements(transaction.dialect)})`,
          [key, JSON.stringify(group)],
        );
        const presentSet = new Set(present.map((row) => row.digest));
        for (const rowDigest of group) {
          if (!presentSet.has(rowDigest)) missing.push([rowDigest, candidates.get(rowDigest)!]);
        }
      }
      let written = 0;
      for (const group of chunks(missing, CHUNK)) {
        const result = await transaction.execute(
          `INSERT INTO table_rows (project, digest, value_json) VALUES ${group.map(() => '(?, ?, ?)').join(', ')} ON CONFLICT DO NOTHING`,
          group.flatMap(([rowDigest, text]) => [key, rowDigest, text]),
        );
        written += result.changes;
      }
      await transaction.execute(
        'INSERT INTO tables (project, digest, row_digests_json, row_count, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        [key, digest, JSON.stringify(rowDigests), rowDigests.length, timestamp()],
      );
      return written;
    });
    return {
      ref: formatRef({ kind: 'table', entity, project, digest }),
      digest,
      rowCount: rowDigests.length,
      rowDigests,
      newRowCount,
    };
  }

  /** The row digests of a table, in order. */
  async rowDigests(tableRef: string, executor: SqlExecutor = this.context.database): Promise<string[]> {
    const ref = parseRefOfKind(tableRef, 'table');
    const [table] = await executor.query<{ row_digests_json: string }>(
      'SELECT row_digests_json FROM tables WHERE project = ? AND digest = ?',
      [`${ref.entity}/${ref.project}`, ref.digest],
    );
    if (!table)
      throw new NotFoundError(
        `The table ${tableRef} does not exist; publish its rows first (tables.create or datasets.publish).`,
      );
    return parseJson<string[]>(table.row_digests_json);
  }

  /** Rows of a table in order, `offset`/`limit` paging through big ones. */
  async rows(tableRef: string, options: { offset?: number; limit?: number } = {}): Promise<TableRow[]> {
    const ref = parseRefOfKind(tableRef, 'table');
    const all = await this.rowDigests(tableRef);
    const offset = options.offset ?? 0;
    const selected = all.slice(offset, options.limit === undefined ? undefined : offset + options.limit);
    const values = new Map<string, string>();
    const database = this.context.database;
    for (const group of chunks([...new Set(selected)], LOOKUP_CHUNK)) {
      const found = await database.query<{ digest: string; value_json: string }>(
        `SELECT digest, value_json FROM table_rows WHERE project = ? AND digest IN (${jsonArrayElements(database.dialect)})`,
        [`${ref.entity}/${ref.project}`, JSON.stringify(group)],
      );
      for (const row of found) values.set(row.digest, row.value_json);
    }
    return selected.map((digest) => {
      const text = values.get(digest);
      if (text === undefined)
        throw new NotFoundError(`Row ${digest} of ${tableRef} is missing from the store; the database is incomplete.`);
      return { digest, value: JSON.parse(text) as Record<string, unknown> };
    });
  }
}
