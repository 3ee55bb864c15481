import { canonicalJson, jsonArrayElements, type SqlDialect, type SqlValue } from '../lineage';
import { checkExpression } from './query-expression';
import type { CallsFilter } from './schemas';

/**
 * Turns a Weave calls query (filter, `$expr` query, sort) into SQL over the lineage store's `calls c` table, so
 * `calls/query`, `calls/stream_query` and `calls/query_stats` filter, sort, count and page in the database.
 *
 * Each condition compiles either exactly (the SQL selects the same calls as the in-memory evaluator in
 * query-expression.ts) or as a superset (the SQL only narrows; every row it returns is then checked in memory).
 * Only an exact plan may count and page in SQL; an inexact one streams the narrowed rows through the evaluator.
 */

export interface SqlCondition {
  sql: string;
  parameters: SqlValue[];
  /** True when the SQL selects exactly what the in-memory evaluator would; false: a superset to be checked row by row. */
  exact: boolean;
}

/** The call fields stored as columns, as the Weave call schema names them. */
const COLUMNS: Record<string, { column: string; nullable: boolean }> = {
  id: { column: 'c.id', nullable: false },
  op_name: { column: 'c.op_name', nullable: false },
  trace_id: { column: 'c.trace_id', nullable: false },
  started_at: { column: 'c.started_at', nullable: false },
  display_name: { column: 'c.display_name', nullable: true },
  parent_id: { column: 'c.parent_id', nullable: true },
  ended_at: { column: 'c.ended_at', nullable: true },
  exception: { column: 'c.exception', nullable: true },
};

/** Call fields stored inside a JSON column, by their first path segment. */
const JSON_COLUMNS: Record<string, string> = {
  attributes: 'c.attributes_json',
  inputs: 'c.inputs_json',
  output: 'c.output_json',
  summary: 'c.summary_json',
};

const ALWAYS: SqlCondition = { sql: '1 = 1', parameters: [], exact: true };
const NEVER: SqlCondition = { sql: '1 = 0', parameters: [], exact: true };
/** "Cannot be decided in SQL": selects everything, the evaluator decides. */
const UNDECIDED: SqlCondition = { sql: '1 = 1', parameters: [], exact: false };

type Scalar = string | number | boolean | null;

/** What a condition is compiled for: the database's SQL dialect and the project (`entity/project`) queried. */
export interface PlanContext {
  dialect: SqlDialect;
  project: string;
}

function fieldOf(operand: unknown): string | undefined {
  const path = (operand as { $getField?: unknown } | null)?.$getField;
  return typeof path === 'string' ? path : undefined;
}

function literalOf(operand: unknown): { value: Scalar } | undefined {
  if (operand === null || typeof operand !== 'object' || !('$literal' in operand)) return undefined;
  const value = (operand as { $literal: unknown }).$literal;
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return { value };
  }
  return undefined;
}

/** `attributes.<dotted key>` → the key as call_attributes indexes it. */
function attributeKey(field: string): string | undefined {
  return field.startsWith('attributes.') && field.length > 'attributes.'.length
    ? field.slice('attributes.'.length)
    : undefined;
}

/** Calls with an attribute among values: a lookup in the attribute index, which then drives the query (no row scan). */
function attributeEquals(key: string, values: string[], context: PlanContext): SqlCondition {
  return {
    sql: `c.id IN (SELECT a.call_id FROM call_attributes a WHERE a.project = ? AND a.attribute_key = ? AND a.attribute_value IN (${values.map(() => '?').join(', ')}))`,
    parameters: [context.project, key, ...values],
    exact: true,
  };
}

function all(parts: SqlCondition[]): SqlCondition {
  if (parts.length === 0) return ALWAYS;
  return {
    sql: parts.map((part) => `(${part.sql})`).join(' AND '),
    parameters: parts.flatMap((part) => part.parameters),
    exact: parts.every((part) => part.exact),
  };
}

function any(parts: SqlCondition[]): SqlCondition {
  if (parts.length === 0) return NEVER;
  return {
    sql: parts.map((part) => `(${part.sql})`).join(' OR '),
    parameters: parts.flatMap((part) => part.parameters),
    exact: parts.every((part) => part.exact),
  };
}

/**
 * `sameValue` of the evaluator compares a stored scalar with a literal as strings; columns hold strings or NULL and
 * call_attributes holds each scalar leaf as its string, so equality is a string comparison. Every leaf is NULL-safe
 * (never SQL NULL), so `NOT` means what the evaluator's `$not` means.
 */
function equals(field: string, literal: Scalar, context: PlanContext): SqlCondition {
  const column = COLUMNS[field];
  if (column) {
    if (literal === null)
      return column.nullable ? { sql: `${column.column} IS NULL`, parameters: [], exact: true } : NEVER;
    return { sql: `${column.column} IS NOT NULL AND ${column.column} = ?`, parameters: [String(literal)], exact: true };
  }
  const key = attributeKey(field);
  // Attributes are never null (the trace server stores a null attribute as its JSON text).
  if (key !== undefined) return literal === null ? NEVER : attributeEquals(key, [String(literal)], context);
  return UNDECIDED;
}

function greater(field: string, literal: Scalar, inclusive: boolean, context: PlanContext): SqlCondition {
  const column = COLUMNS[field];
  if (!column) return UNDECIDED;
  // The evaluator orders strings with strings only (by code unit: PostgreSQL must compare bytes, not by locale).
  if (typeof literal !== 'string') return NEVER;
  const collated = context.dialect === 'postgres' ? `${column.column} COLLATE "C"` : column.column;
  return {
    sql: `${column.column} IS NOT NULL AND ${collated} ${inclusive ? '>=' : '>'} ?`,
    parameters: [literal],
    exact: true,
  };
}

function contains(spec: unknown, context: PlanContext): SqlCondition {
  const { input, substr, case_insensitive } = (spec ?? {}) as {
    input?: unknown;
    substr?: unknown;
    case_insensitive?: boolean | null;
  };
  const field = fieldOf(input);
  const literal = literalOf(substr);
  const column = field === undefined ? undefined : COLUMNS[field];
  // Case folding differs between JavaScript and SQL for non-ASCII text: case-insensitive search is left to the evaluator.
  if (!column || !literal || typeof literal.value !== 'string' || case_insensitive) return UNDECIDED;
  const position = context.dialect === 'sqlite' ? `instr(${column.column}, ?)` : `strpos(${column.column}, ?)`;
  return { sql: `${column.column} IS NOT NULL AND ${position} > 0`, parameters: [literal.value], exact: true };
}

/** A `$expr` operation as a SQL condition over `calls c`; throws the evaluator's 422 for a malformed one. */
export function compileExpression(expression: unknown, context: PlanContext): SqlCondition {
  checkExpression(expression);
  return compile(expression as Record<string, unknown>, context);
}

function compile(expression: Record<string, unknown>, context: PlanContext): SqlCondition {
  const [operator, operands] = Object.entries(expression)[0]!;
  switch (operator) {
    case '$and':
      return all((operands as Record<string, unknown>[]).map((item) => compile(item, context)));
    case '$or':
      return any((operands as Record<string, unknown>[]).map((item) => compile(item, context)));
    case '$not': {
      const inner = compile((operands as Record<string, unknown>[])[0]!, context);
      // The complement of a superset is not a superset of the complement: only an exact condition can be negated.
      return inner.exact ? { sql: `NOT (${inner.sql})`, parameters: inner.parameters, exact: true } : UNDECIDED;
    }
    case '$eq': {
      const [left, right] = operands as [unknown, unknown];
      const field = fieldOf(left) ?? fieldOf(right);
      const literal = literalOf(right) ?? literalOf(left);
      return field !== undefined && literal ? equals(field, literal.value, context) : UNDECIDED;
    }
    case '$in': {
      const [left, items] = operands as [unknown, unknown[]];
      const field = fieldOf(left);
      if (field === undefined) return UNDECIDED;
      const literals = items.map(literalOf);
      if (literals.some((literal) => literal === undefined)) return UNDECIDED;
      return any(literals.map((literal) => equals(field, literal!.value, context)));
    }
    case '$gt':
    case '$gte': {
      const [left, right] = operands as [unknown, unknown];
      const field = fieldOf(left);
      const literal = literalOf(right);
      return field !== undefined && literal ? greater(field, literal.value, operator === '$gte', context) : UNDECIDED;
    }
    case '$contains':
      return contains(operands, context);
    default:
      // $literal, $getField or $convert used as a condition: rare enough to leave to the evaluator.
      return UNDECIDED;
  }
}

function inList(column: string, values: string[], context: PlanContext): SqlCondition {
  return {
    sql: `${column} IN (${jsonArrayElements(context.dialect)})`,
    parameters: [JSON.stringify(values)],
    exact: true,
  };
}

/**
 * Op names starting with a prefix that ends in ":". SQLite compares bytes, so the prefix is a range the
 * (project, op_name) index serves: [prefix, prefix with its ":" raised to ";"). PostgreSQL's collation need not
 * order by bytes, so there it is a substring test.
 */
function opNamePrefix(prefix: string, context: PlanContext): SqlCondition {
  // substr counts characters, JavaScript code units: they differ only past the Basic Multilingual Plane.
  const exact = !/[\uD800-\uDFFF]/.test(prefix);
  if (context.dialect === 'sqlite') {
    return { sql: 'c.op_name >= ? AND c.op_name < ?', parameters: [prefix, `${prefix.slice(0, -1)};`], exact: true };
  }
  return { sql: 'substr(c.op_name, 1, ?) = ?', parameters: [prefix.length, prefix], exact };
}

/** The structured `filter` of a calls query as SQL (the ref filters only narrow: refs are found in memory). */
export function compileFilter(filter: CallsFilter, context: PlanContext): SqlCondition {
  if (!filter) return ALWAYS;
  const parts: SqlCondition[] = [];
  if (filter.op_names) {
    const exactNames = filter.op_names.filter((name) => !name.endsWith(':*'));
    const prefixes = filter.op_names.filter((name) => name.endsWith(':*')).map((name) => name.slice(0, -1));
    parts.push(
      any([
        ...(exactNames.length > 0 ? [inList('c.op_name', exactNames, context)] : []),
        // `…/op/<name>:*` is every version of an op: the names that start with `…/op/<name>:`.
        ...prefixes.map((prefix) => opNamePrefix(prefix, context)),
      ]),
    );
  }
  if (filter.call_ids) parts.push(inList('c.id', filter.call_ids, context));
  if (filter.trace_ids) parts.push(inList('c.trace_id', filter.trace_ids, context));
  if (filter.parent_ids) parts.push(inList('c.parent_id', filter.parent_ids, context));
  if (filter.trace_roots_only) parts.push({ sql: 'c.parent_id IS NULL', parameters: [], exact: true });
  if (filter.wb_run_ids) {
    parts.push(
      filter.wb_run_ids.length === 0
        ? NEVER
        : {
            ...attributeEquals('wandb-run-id', filter.wb_run_ids, context),
            exact: false /* only a string attribute counts */,
          },
    );
  }
  if (filter.wb_user_ids && filter.wb_user_ids.length > 0) parts.push(NEVER);
  for (const [refs, column] of [
    [filter.input_refs, 'c.inputs_json'],
    [filter.output_refs, 'c.output_json'],
  ] as const) {
    if (!refs) continue;
    // A ref is stored as a JSON string somewhere in the value: its text narrows the rows, the evaluator decides.
    const position = (text: string): SqlCondition => ({
      sql: context.dialect === 'sqlite' ? `instr(${column}, ?) > 0` : `strpos(${column}, ?) > 0`,
      parameters: [text],
      exact: false,
    });
    parts.push(any(refs.map((ref) => position(canonicalJson(ref)))));
  }
  return all(parts);
}

export interface SortKey {
  /** A SQL expression over `calls c`. */
  sql: string;
  parameters: SqlValue[];
  direction: 'asc' | 'desc';
  /** The call field the key reads, when it is a column that is never NULL: only such keys allow keyset pagination. */
  field?: string;
}

/** `$.\"a\".\"b\"` / `{a,b}`: a JSON path into a column, for SQLite and PostgreSQL; undefined for a path neither can take. */
function jsonPath(segments: string[], dialect: SqlDialect): string | undefined {
  if (segments.some((segment) => segment.length === 0 || /["\\{},]/.test(segment))) return undefined;
  return dialect === 'sqlite'
    ? `$${segments.map((segment) => `."${segment}"`).join('')}`
    : `{${segments.map((segment) => `"${segment}"`).join(',')}}`;
}

/**
 * ORDER BY keys for `sort_by`, ending in (started_at, id) — the default order, and a total one (ids are unique per
 * project). Missing values sort first ascending and last descending, as the in-memory sort did. Fields the store
 * has nowhere (`wb_user_id`, `deleted_at`, …) are the same for every call and are left out.
 */
export function compileSort(
  sortBy: { field: string; direction: 'asc' | 'desc' }[] | null | undefined,
  dialect: SqlDialect,
): SortKey[] {
  const keys: SortKey[] = [];
  for (const { field, direction } of sortBy ?? []) {
    const column = COLUMNS[field];
    if (column) {
      if (column.nullable) {
        keys.push({ sql: `CASE WHEN ${column.column} IS NULL THEN 0 ELSE 1 END`, parameters: [], direction });
      }
      keys.push({
        sql: dialect === 'postgres' ? `${column.column} COLLATE "C"` : column.column,
        parameters: [],
        direction,
        field: column.nullable ? undefined : field,
      });
      continue;
    }
    const [head, ...rest] = field.split('.');
    const jsonColumn = JSON_COLUMNS[head!];
    const path = jsonColumn === undefined || rest.length === 0 ? undefined : jsonPath(rest, dialect);
    if (jsonColumn === undefined || path === undefined) continue;
    const value =
      dialect === 'sqlite' ? `json_extract(${jsonColumn}, ?)` : `(CAST(${jsonColumn} AS jsonb) #> CAST(? AS text[]))`;
    keys.push({ sql: `CASE WHEN ${value} IS NULL THEN 0 ELSE 1 END`, parameters: [path], direction });
    keys.push({ sql: value, parameters: [path], direction });
  }
  // The default order and the tie-break, in the database's own collation so the (project, started_at, id) index serves it.
  keys.push({ sql: 'c.started_at', parameters: [], direction: 'asc', field: 'started_at' });
  keys.push({ sql: 'c.id', parameters: [], direction: 'asc', field: 'id' });
  return keys;
}
