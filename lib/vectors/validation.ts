import {
  VectorDimensionMismatchError,
  InvalidCollectionNameError,
  InvalidFilterError,
  InvalidPayloadError,
  InvalidPointIdError,
  InvalidQueryError,
  InvalidVectorError,
  InvalidVectorParamsError,
  UnsupportedFilterError,
} from './errors';
import type { Condition, Filter, Payload, PointStruct, QueryRequest, Vector, VectorParams } from './vector-store';

/** Validation shared by both adapters, so that both reject the same inputs with the same errors. */

const collectionNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const distances = new Set(['Cosine', 'Dot', 'Euclid']);

export function validateCollectionName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidCollectionNameError(name, 'it must be a non-empty string');
  }
  if (!collectionNamePattern.test(name)) {
    throw new InvalidCollectionNameError(
      name,
      'use letters, digits, dot, dash and underscore, starting with a letter or digit, at most 255 characters',
    );
  }
  return name;
}

export function validateVectorParams(params: VectorParams): VectorParams {
  if (!Number.isSafeInteger(params.size) || params.size < 1 || params.size > 65_536) {
    throw new InvalidVectorParamsError(`vector size must be an integer from 1 to 65536, got ${String(params.size)}`);
  }
  if (!distances.has(params.distance)) {
    throw new InvalidVectorParamsError(
      `distance must be Cosine, Dot or Euclid, got ${JSON.stringify(params.distance)}`,
    );
  }
  return { size: params.size, distance: params.distance };
}

/** Lowercase hyphenated form, which is how Qdrant returns UUIDs. */
export function normalizePointId(id: unknown): string {
  if (typeof id !== 'string' || !uuidPattern.test(id)) throw new InvalidPointIdError(id);
  return id.toLowerCase();
}

/**
 * Checks length and finiteness and converts to float32. For Cosine collections the vector is normalised,
 * as Qdrant does on upsert, so both adapters store and return the same values.
 */
export function toStoredVector(vector: Vector, params: VectorParams, collection: string, what: string): Float32Array {
  if (!(vector instanceof Float32Array) && !Array.isArray(vector)) {
    throw new InvalidVectorError(what, 'expected an array of numbers');
  }
  if (vector.length !== params.size) {
    throw new VectorDimensionMismatchError(collection, params.size, vector.length, what);
  }
  const stored = new Float32Array(vector.length);
  for (let index = 0; index < vector.length; index++) {
    const value = vector[index];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new InvalidVectorError(what, `element ${index} is ${String(value)}; every element must be a finite number`);
    }
    stored[index] = value;
  }
  return params.distance === 'Cosine' ? normalized(stored) : stored;
}

export function vectorNorm(vector: Float32Array): number {
  let sumOfSquares = 0;
  for (let index = 0; index < vector.length; index++) sumOfSquares += vector[index] * vector[index];
  return Math.sqrt(sumOfSquares);
}

function normalized(vector: Float32Array): Float32Array {
  const norm = vectorNorm(vector);
  // A zero vector has no direction; it is kept as is (its cosine score with anything is 0).
  if (norm === 0) return vector;
  for (let index = 0; index < vector.length; index++) vector[index] /= norm;
  return vector;
}

/** A point checked and converted to what is stored. */
export interface StoredPoint {
  id: string;
  vector: Float32Array;
  payload: Payload;
}

/** Checks every point before any is written, so a bad point fails the whole upsert instead of half of it. */
export function toStoredPoints(
  points: readonly PointStruct[],
  params: VectorParams,
  collection: string,
): StoredPoint[] {
  if (!Array.isArray(points)) throw new InvalidQueryError('upsert takes a list of points');
  return points.map((point: PointStruct | undefined) => {
    const id = normalizePointId(point?.id);
    return {
      id,
      vector: toStoredVector(point!.vector, params, collection, `The vector of point '${id}'`),
      payload: validatePayload(id, point!.payload),
    };
  });
}

export function validatePayload(id: string, payload: unknown): Payload {
  if (payload === undefined || payload === null) return {};
  if (typeof payload !== 'object' || Array.isArray(payload)) {
    throw new InvalidPayloadError(id, 'it must be a JSON object');
  }
  let text: string;
  try {
    text = JSON.stringify(payload);
  } catch (error) {
    throw new InvalidPayloadError(id, `it cannot be serialised as JSON (${(error as Error).message})`);
  }
  // Round-tripping drops undefined and functions, so the stored payload is exactly what is read back.
  return JSON.parse(text) as Payload;
}

export function validateLimit(limit: unknown, what = 'limit'): number {
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
    throw new InvalidQueryError(`${what} must be a positive integer, got ${String(limit)}`);
  }
  return limit;
}

export function validateQueryRequest(request: QueryRequest): QueryRequest {
  if (typeof request !== 'object' || request === null) throw new InvalidQueryError('the request must be an object');
  validateLimit(request.limit);
  const filter = request.filter === undefined ? undefined : parseFilter(request.filter);
  if (request.hybrid !== undefined) {
    if (typeof request.hybrid.field !== 'string' || request.hybrid.field.length === 0) {
      throw new InvalidQueryError('hybrid.field must name a payload text field');
    }
    if (typeof request.hybrid.text !== 'string') throw new InvalidQueryError('hybrid.text must be a string');
  }
  return { ...request, filter };
}

const fieldConditionKeys = new Set(['key', 'match', 'range']);
const filterKeys = new Set(['must', 'should', 'must_not']);
const rangeKeys = new Set(['gt', 'gte', 'lt', 'lte']);

/**
 * Validates a filter against the supported Qdrant subset and returns it with ids normalised. Unknown or
 * unsupported constructs throw: a dropped condition would silently widen the results.
 */
export function parseFilter(filter: unknown, path = 'filter'): Filter {
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw new InvalidFilterError(path, 'a filter must be an object with must, should or must_not');
  }
  const parsed: Filter = {};
  for (const [clause, conditions] of Object.entries(filter)) {
    if (!filterKeys.has(clause)) {
      throw new UnsupportedFilterError(`${path}.${clause}`, `the filter clause '${clause}'`);
    }
    if (conditions === undefined) continue;
    // Qdrant accepts a single condition in place of a list; so do we.
    const list: unknown[] = Array.isArray(conditions) ? conditions : [conditions];
    parsed[clause as keyof Filter] = list.map((condition, index) =>
      parseCondition(condition, `${path}.${clause}[${index}]`),
    );
  }
  return parsed;
}

function parseCondition(condition: unknown, path: string): Condition {
  if (typeof condition !== 'object' || condition === null || Array.isArray(condition)) {
    throw new InvalidFilterError(path, 'a condition must be an object');
  }
  const keys = Object.keys(condition);
  const record = condition as Record<string, unknown>;
  if (keys.some((key) => filterKeys.has(key))) return parseFilter(condition, path);
  if ('has_id' in record) {
    if (keys.length !== 1) throw new InvalidFilterError(path, 'has_id must be the only key of its condition');
    if (!Array.isArray(record.has_id)) throw new InvalidFilterError(path, 'has_id must be a list of point ids');
    return { has_id: record.has_id.map((id) => normalizePointId(id)) };
  }
  if (!('key' in record)) {
    throw new UnsupportedFilterError(path, `the condition ${JSON.stringify(keys)}`);
  }
  for (const key of keys) {
    if (!fieldConditionKeys.has(key))
      throw new UnsupportedFilterError(`${path}.${key}`, `the field condition '${key}'`);
  }
  const key = parsePayloadKey(record.key, `${path}.key`);
  if (record.match !== undefined && record.range !== undefined) {
    throw new InvalidFilterError(path, 'a field condition has either match or range, not both');
  }
  if (record.match !== undefined) return { key, match: parseMatch(record.match, `${path}.match`) } as Condition;
  if (record.range !== undefined) return { key, range: parseRange(record.range, `${path}.range`) };
  throw new InvalidFilterError(path, `the condition on '${key}' needs match or range`);
}

/** Dotted keys address nested objects; Qdrant's `[]` array projection is not supported. */
export function parsePayloadKey(key: unknown, path: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidFilterError(path, 'key must be a non-empty string');
  if (/[[\]"]/.test(key)) throw new UnsupportedFilterError(path, `the key '${key}' (array projection or quotes)`);
  if (key.split('.').some((segment) => segment.length === 0)) {
    throw new InvalidFilterError(path, `key '${key}' has an empty segment`);
  }
  return key;
}

function parseMatch(match: unknown, path: string): { value: string | number | boolean } | { any: string[] | number[] } {
  if (typeof match !== 'object' || match === null || Array.isArray(match)) {
    throw new InvalidFilterError(path, 'match must be an object');
  }
  const keys = Object.keys(match);
  const record = match as Record<string, unknown>;
  if (keys.length !== 1 || (keys[0] !== 'value' && keys[0] !== 'any')) {
    throw new UnsupportedFilterError(path, `match with ${JSON.stringify(keys)}`);
  }
  if (keys[0] === 'value') {
    const value = record.value;
    if (typeof value === 'string' || typeof value === 'boolean') return { value };
    if (typeof value === 'number' && Number.isSafeInteger(value)) return { value };
    throw new InvalidFilterError(`${path}.value`, 'match.value must be a string, an integer or a boolean');
  }
  const any = record.any;
  if (!Array.isArray(any)) throw new InvalidFilterError(`${path}.any`, 'match.any must be a list');
  if (any.every((item) => typeof item === 'string')) return { any: any as string[] };
  if (any.every((item) => typeof item === 'number' && Number.isSafeInteger(item))) return { any: any as number[] };
  throw new InvalidFilterError(`${path}.any`, 'match.any must list only strings or only integers');
}

function parseRange(range: unknown, path: string): { gt?: number; gte?: number; lt?: number; lte?: number } {
  if (typeof range !== 'object' || range === null || Array.isArray(range)) {
    throw new InvalidFilterError(path, 'range must be an object');
  }
  const parsed: Record<string, number> = {};
  for (const [bound, value] of Object.entries(range)) {
    if (!rangeKeys.has(bound)) throw new UnsupportedFilterError(`${path}.${bound}`, `the range bound '${bound}'`);
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new InvalidFilterError(
        `${path}.${bound}`,
        'range bounds must be finite numbers (datetime ranges are not supported)',
      );
    }
    parsed[bound] = value;
  }
  if (Object.keys(parsed).length === 0)
    throw new InvalidFilterError(path, 'range needs at least one of gt, gte, lt, lte');
  return parsed;
}
