import { RequestValidationError } from './errors';

/**
 * Evaluates Weave's query expressions (`$and`, `$or`, `$not`, `$eq`, `$gt`, `$gte`, `$in`, `$contains`,
 * `$getField`, `$literal`, `$convert`) against one record in memory, so `calls/stream_query` can honour
 * the `query` the SDK and the Weave UI send without a SQL translation per backend.
 */

type Expression = Record<string, unknown>;

function fail(message: string): never {
  throw new RequestValidationError(message, [{ loc: ['body', 'query'], msg: message, type: 'value_error' }]);
}

/** Reads a dotted path (`attributes.weave.source`, `inputs.question`) from a record. */
export function readField(record: unknown, path: string): unknown {
  let current: unknown = record;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function convert(value: unknown, to: unknown): unknown {
  switch (to) {
    case 'double':
    case 'int': {
      const number = Number(value);
      if (Number.isNaN(number)) return null;
      return to === 'int' ? Math.trunc(number) : number;
    }
    case 'string':
      return value === null || value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value);
    case 'bool':
      return Boolean(value);
    case 'exists':
      return value !== null && value !== undefined;
    default:
      return fail(`$convert to "${String(to)}" is not supported; use double, string, int, bool or exists.`);
  }
}

function compare(left: unknown, right: unknown): number | undefined {
  if (typeof left === 'number' && typeof right === 'number') return left - right;
  if (typeof left === 'string' && typeof right === 'string') return left < right ? -1 : left > right ? 1 : 0;
  return undefined;
}

function pair(operator: string, operands: unknown, record: unknown): [unknown, unknown] {
  if (!Array.isArray(operands) || operands.length !== 2) fail(`${operator} takes a list of two operands.`);
  return [evaluate(operands[0], record), evaluate(operands[1], record)];
}

function sameValue(left: unknown, right: unknown): boolean {
  if (left === right) return true;
  // Stored numbers may be compared with literals written as strings and the reverse, as the Weave server does after $convert.
  return left !== null && right !== null && typeof left !== 'object' && String(left) === String(right);
}

/** The value of an operand or the truth of an operation. */
export function evaluate(expression: unknown, record: unknown): unknown {
  if (expression === null || typeof expression !== 'object' || Array.isArray(expression)) {
    return fail(
      `A query operand must be an object such as {"$getField": "op_name"}; got ${JSON.stringify(expression)}.`,
    );
  }
  const entries = Object.entries(expression as Expression);
  if (entries.length !== 1) fail(`A query operation has exactly one operator; got ${JSON.stringify(expression)}.`);
  const [operator, operands] = entries[0]!;
  switch (operator) {
    case '$literal':
      return operands;
    case '$getField':
      if (typeof operands !== 'string') fail('$getField takes a field path such as "attributes.weave.source".');
      return readField(record, operands);
    case '$convert': {
      const spec = operands as { input?: unknown; to?: unknown };
      return convert(evaluate(spec?.input, record), spec?.to);
    }
    case '$and':
      if (!Array.isArray(operands)) fail('$and takes a list of operations.');
      return operands.every((item) => evaluate(item, record) === true);
    case '$or':
      if (!Array.isArray(operands)) fail('$or takes a list of operations.');
      return operands.some((item) => evaluate(item, record) === true);
    case '$not':
      if (!Array.isArray(operands) || operands.length !== 1) fail('$not takes a list of one operation.');
      return evaluate(operands[0], record) !== true;
    case '$eq': {
      const [left, right] = pair(operator, operands, record);
      return sameValue(left, right);
    }
    case '$gt':
    case '$gte': {
      const [left, right] = pair(operator, operands, record);
      const order = compare(left, right);
      return order !== undefined && (operator === '$gt' ? order > 0 : order >= 0);
    }
    case '$in': {
      if (!Array.isArray(operands) || operands.length !== 2 || !Array.isArray(operands[1])) {
        return fail('$in takes [operand, [operands…]].');
      }
      const value = evaluate(operands[0], record);
      return (operands[1] as unknown[]).some((item) => sameValue(value, evaluate(item, record)));
    }
    case '$contains': {
      const spec = operands as { input?: unknown; substr?: unknown; case_insensitive?: boolean | null };
      const input = evaluate(spec?.input, record);
      const substring = evaluate(spec?.substr, record);
      if (typeof input !== 'string' || typeof substring !== 'string') return false;
      return spec.case_insensitive ? input.toLowerCase().includes(substring.toLowerCase()) : input.includes(substring);
    }
    default:
      return fail(
        `The query operator "${operator}" is not supported; use $and, $or, $not, $eq, $gt, $gte, $in, $contains, $getField, $literal or $convert.`,
      );
  }
}

/** True when the record satisfies a `{"$expr": …}` query (or there is none). */
export function matchesQuery(query: { $expr: Record<string, unknown> } | null | undefined, record: unknown): boolean {
  if (!query) return true;
  return evaluate(query.$expr, record) === true;
}

const CONVERT_TARGETS = new Set(['double', 'int', 'string', 'bool', 'exists']);

/**
 * Checks a whole expression's operators and shapes without a record, so a bad query is a 422 even when no call
 * is ever evaluated (`evaluate` stops early in `$and`/`$or` and sees nothing when nothing matches).
 */
export function checkExpression(expression: unknown): void {
  if (expression === null || typeof expression !== 'object' || Array.isArray(expression)) {
    fail(`A query operand must be an object such as {"$getField": "op_name"}; got ${JSON.stringify(expression)}.`);
  }
  const entries = Object.entries(expression as Expression);
  if (entries.length !== 1) fail(`A query operation has exactly one operator; got ${JSON.stringify(expression)}.`);
  const [operator, operands] = entries[0]!;
  switch (operator) {
    case '$literal':
      return;
    case '$getField':
      if (typeof operands !== 'string') fail('$getField takes a field path such as "attributes.weave.source".');
      return;
    case '$convert': {
      const spec = operands as { input?: unknown; to?: unknown };
      checkExpression(spec?.input);
      if (!CONVERT_TARGETS.has(String(spec?.to))) {
        fail(`$convert to "${String(spec?.to)}" is not supported; use double, string, int, bool or exists.`);
      }
      return;
    }
    case '$and':
    case '$or':
      if (!Array.isArray(operands)) fail(`${operator} takes a list of operations.`);
      operands.forEach(checkExpression);
      return;
    case '$not':
      if (!Array.isArray(operands) || operands.length !== 1) fail('$not takes a list of one operation.');
      checkExpression(operands[0]);
      return;
    case '$eq':
    case '$gt':
    case '$gte':
      if (!Array.isArray(operands) || operands.length !== 2) fail(`${operator} takes a list of two operands.`);
      operands.forEach(checkExpression);
      return;
    case '$in':
      if (!Array.isArray(operands) || operands.length !== 2 || !Array.isArray(operands[1])) {
        fail('$in takes [operand, [operands…]].');
      }
      checkExpression(operands[0]);
      (operands[1] as unknown[]).forEach(checkExpression);
      return;
    case '$contains': {
      const spec = operands as { input?: unknown; substr?: unknown };
      checkExpression(spec?.input);
      checkExpression(spec?.substr);
      return;
    }
    default:
      fail(
        `The query operator "${operator}" is not supported; use $and, $or, $not, $eq, $gt, $gte, $in, $contains, $getField, $literal or $convert.`,
      );
  }
}
