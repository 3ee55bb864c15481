import { indexedText } from './payload-index';
import type { Condition, Filter, MatchAnyCondition, MatchValueCondition, RangeCondition } from './vector-store';

/**
 * Compiles a validated filter (see parseFilter) to a SQL boolean over the alias `point`. Field conditions
 * look up the collection's payload index (`valuesTable`, see payload-index.ts), so an array value matches
 * when any element does, as in Qdrant, and values match only their own JSON type. No predicate is ever
 * NULL, so that `NOT` in must_not stays two-valued.
 */
export function compileFilter(filter: Filter | undefined, valuesTable: string, parameters: unknown[]): string {
  if (filter === undefined) return '1';
  const compile = (condition: Condition) => compileCondition(condition, valuesTable, parameters);
  const parts: string[] = [];
  for (const condition of filter.must ?? []) parts.push(compile(condition));
  if (filter.should !== undefined && filter.should.length > 0) {
    parts.push(`(${filter.should.map(compile).join(' OR ')})`);
  }
  if (filter.must_not !== undefined && filter.must_not.length > 0) {
    parts.push(`NOT (${filter.must_not.map(compile).join(' OR ')})`);
  }
  return parts.length === 0 ? '1' : `(${parts.join(' AND ')})`;
}

function compileCondition(condition: Condition, valuesTable: string, parameters: unknown[]): string {
  if ('has_id' in condition) {
    if (condition.has_id.length === 0) return '0';
    parameters.push(...condition.has_id);
    return `point.id IN (${placeholders(condition.has_id.length)})`;
  }
  if (!('key' in condition)) return compileFilter(condition, valuesTable, parameters);
  parameters.push(condition.key);
  const predicate = valuePredicate(condition, parameters);
  return `point.point_key IN (SELECT point_key FROM ${valuesTable} WHERE key = ? AND (${predicate}))`;
}

/** SQL over the index row's `type` and `value`; pushes its parameters in text order. */
function valuePredicate(
  condition: MatchValueCondition | MatchAnyCondition | RangeCondition,
  parameters: unknown[],
): string {
  if ('range' in condition) {
    const operators = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;
    const bounds: string[] = [];
    for (const bound of ['gt', 'gte', 'lt', 'lte'] as const) {
      const limit = condition.range[bound];
      if (limit === undefined) continue;
      bounds.push(`value ${operators[bound]} ?`);
      parameters.push(limit);
    }
    return `type IN ('integer', 'real') AND ${bounds.join(' AND ')}`;
  }
  const match = condition.match;
  if ('value' in match) {
    if (typeof match.value === 'boolean') return `type = '${match.value ? 'true' : 'false'}'`;
    if (typeof match.value === 'number') {
      parameters.push(match.value);
      return `type = 'integer' AND value = ?`;
    }
    const text = indexedText(match.value);
    parameters.push(text.type, text.value);
    return 'type = ? AND value = ?';
  }
  if (match.any.length === 0) return '0';
  if (typeof match.any[0] === 'number') {
    parameters.push(...match.any);
    return `type = 'integer' AND value IN (${placeholders(match.any.length)})`;
  }
  const groups: string[] = [];
  for (const type of ['text', 'text-digest'] as const) {
    const values = (match.any as string[]).map(indexedText).filter((text) => text.type === type);
    if (values.length === 0) continue;
    parameters.push(type, ...values.map((text) => text.value));
    groups.push(`(type = ? AND value IN (${placeholders(values.length)}))`);
  }
  return groups.join(' OR ');
}

function placeholders(count: number): string {
  return new Array<string>(count).fill('?').join(', ');
}
