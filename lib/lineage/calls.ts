import { canonicalJson } from './digest';
import { InvalidValueError, LineageError, NotFoundError } from './errors';
import { runOnce } from './idempotency';
import type { ObjectStore } from './objects';
import { formatRef, parseRefOfKind, validateName } from './refs';
import { newId, parseJson, resolveProject, timestamp, type StoreContext } from './store-context';
import type { SqlExecutor, SqlValue } from './sql/sql-database';

/** A call attribute: a scalar, or a nested record of them (the weave SDK writes `weave: { source, client_version }`). */
export type CallAttributeValue = string | number | boolean | { [key: string]: CallAttributeValue };

export interface CallInput {
  /** Caller-chosen id (Weave uses UUIDv7); upserting the same id again updates, never duplicates. */
  id: string;
  entity?: string;
  project?: string;
  /** The op, e.g. `RagModel.predict` or an op ref. */
  opName: string;
  displayName?: string;
  traceId: string;
  parentId?: string;
  /** ISO-8601 time. */
  startedAt: string;
  endedAt?: string;
  inputs?: Record<string, unknown>;
  output?: unknown;
  /** e.g. `wandb-run-id`, `workflow-id`, `activity-attempt`; queryable with `--attr k=v` (nested keys as `outer.inner`). */
  attributes?: Record<string, CallAttributeValue>;
  summary?: Record<string, unknown>;
  exception?: string;
}

export interface CallRecord {
  ref: string;
  id: string;
  entity: string;
  project: string;
  opName: string;
  displayName: string | null;
  traceId: string;
  parentId: string | null;
  startedAt: string;
  endedAt: string | null;
  inputs: Record<string, unknown>;
  output: unknown;
  attributes: Record<string, CallAttributeValue>;
  summary: Record<string, unknown>;
  exception: string | null;
}

export interface CallQuery {
  entity?: string;
  project?: string;
  opName?: string;
  traceId?: string;
  parentId?: string;
  /** Every pair must match (values compared as strings). */
  attributes?: Record<string, string | number | boolean>;
  /** Inclusive lower bound on startedAt (ISO-8601). */
  startedAfter?: string;
  /** Exclusive upper bound on startedAt (ISO-8601). */
  startedBefore?: string;
  /** Only calls without a parent (the roots of traces). */
  rootsOnly?: boolean;
  limit?: number;
  /** Calls to skip before the first one returned (paging, in the same order). */
  offset?: number;
  /** Oldest first (the default) or newest first. */
  order?: 'oldest' | 'newest';
}

/**
 * Calls chosen by a SQL condition over `calls c` (its columns: project, id, op_name, display_name, trace_id, parent_id,
 * started_at, ended_at, inputs_json, output_json, attributes_json, summary_json, exception; attributes indexed in
 * `call_attributes`). For query languages translated to SQL elsewhere (the Weave trace server's calls query).
 */
export interface CallSelection {
  entity?: string;
  project?: string;
  /** A boolean SQL expression over `c`, with `?` placeholders. */
  condition: string;
  parameters: readonly SqlValue[];
  /** ORDER BY expressions over `c` (each with its direction); the caller makes the order total. */
  orderBy: string;
  orderParameters: readonly SqlValue[];
  limit: number;
  offset?: number;
}

export interface FeedbackInput {
  /** The call: `weave:///<entity>/<project>/call/<id>`. */
  call: string;
  /** e.g. `score`, `note`, `reaction`. */
  type: string;
  payload: Record<string, unknown>;
  creator?: string;
  idempotencyKey?: string;
}

export interface Feedback {
  id: string;
  call: string;
  type: string;
  payload: Record<string, unknown>;
  creator: string | null;
  createdAt: string;
}

interface CallRow {
  project: string;
  id: string;
  op_name: string;
  display_name: string | null;
  trace_id: string;
  parent_id: string | null;
  started_at: string;
  ended_at: string | null;
  inputs_json: string;
  output_json: string | null;
  attributes_json: string;
  summary_json: string;
  exception: string | null;
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const LARGE_VALUE_OBJECT = 'CallValue';

function checkId(value: unknown, what: string): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new InvalidValueError(
      `The ${what} ${JSON.stringify(value)} is not allowed; use 1-128 letters, digits, "-" or "_" (a UUID works).`,
    );
  }
  return value;
}

function checkTime(value: unknown, what: string): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    throw new InvalidValueError(
      `The ${what} ${JSON.stringify(value)} is not a time; pass an ISO-8601 string such as new Date().toISOString().`,
    );
  }
  return new Date(value).toISOString();
}

/**
 * Checks attributes and lists the scalar leaves under dotted keys (`weave.source`), which is how nested
 * attributes are indexed and queried; the nested shape itself is stored as written.
 */
function flattenAttributes(attributes: Record<string, CallAttributeValue>): [string, string | number | boolean][] {
  const leaves: [string, string | number | boolean][] = [];
  const visit = (prefix: string, value: unknown, depth: number): void => {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      if (prefix.length > 128) {
        throw new InvalidValueError(`The call attribute "${prefix.slice(0, 40)}…" has a key over 128 characters.`);
      }
      leaves.push([prefix, value]);
      return;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && depth < 8) {
      for (const [key, item] of Object.entries(value)) {
        if (key.length === 0) throw new InvalidValueError(`The call attribute "${prefix}" holds an empty key.`);
        visit(prefix.length === 0 ? key : `${prefix}.${key}`, item, depth + 1);
      }
      return;
    }
    throw new InvalidValueError(
      `The call attribute "${prefix}" must have a 1-128 character key and a string, number or boolean value (or a record of them).`,
    );
  };
  for (const [key, value] of Object.entries(attributes)) {
    if (key.length === 0 || key.length > 128) {
      throw new InvalidValueError(
        `The call attribute "${key}" must have a 1-128 character key and a string, number or boolean value.`,
      );
    }
    visit(key, value, 0);
  }
  return leaves;
}

interface PreparedCall {
  row: CallRow;
  indexedAttributes: [string, string | number | boolean][];
  ref: string;
}

/** Weave calls (traces): one row per op execution, attributes indexed for queries, feedback attached by call ref. */
export class CallStore {
  constructor(
    private readonly context: StoreContext,
    private readonly objects: ObjectStore,
  ) {}

  /** Values over the size threshold become object refs, so call rows stay small (as Weave stores large values). */
  private async shrink(value: unknown, scope: { entity: string; project: string }): Promise<unknown> {
    const text = canonicalJson(value ?? null);
    if (Buffer.byteLength(text) <= this.context.limits.largeCallValueBytes) return value ?? null;
    const published = await this.objects.publish({ ...scope, name: LARGE_VALUE_OBJECT, value });
    return published.ref;
  }

  /** Inserts a call or merges into the one with the same id (end time, output, exception fill in); repeating it changes nothing. */
  async upsert(call: CallInput): Promise<CallRecord> {
    const prepared = await this.prepare(call);
    await this.context.database.transaction((transaction) => this.write(transaction, prepared));
    return this.get(prepared.ref);
  }

  /**
   * Upserts many calls in one transaction (as `upsert` each). A call that fails its checks is left out and reported in
   * `rejected`, with the others written; a database failure writes none of them.
   */
  async upsertMany(
    calls: CallInput[],
  ): Promise<{ refs: string[]; rejected: { index: number; error: LineageError }[] }> {
    const prepared: PreparedCall[] = [];
    const rejected: { index: number; error: LineageError }[] = [];
    for (const [index, call] of calls.entries()) {
      try {
        prepared.push(await this.prepare(call));
      } catch (error) {
        if (!(error instanceof LineageError) || error.retryable) throw error;
        rejected.push({ index, error });
      }
    }
    await this.context.database.transaction(async (transaction) => {
      for (const item of prepared) await this.write(transaction, item);
    });
    return { refs: prepared.map((item) => item.ref), rejected };
  }

  /** Checks a call and shapes its row (large values become object refs); writes nothing to the calls table. */
  private async prepare(call: CallInput): Promise<PreparedCall> {
    const { entity, project, key } = resolveProject(this.context, call.entity, call.project);
    const id = checkId(call.id, 'call id');
    const traceId = checkId(call.traceId, 'trace id');
    const parentId = call.parentId === undefined ? null : checkId(call.parentId, 'parent call id');
    if (typeof call.opName !== 'string' || call.opName.length === 0 || call.opName.length > 512) {
      throw new InvalidValueError('The op name must be 1-512 characters, e.g. "RagModel.predict".');
    }
    const startedAt = checkTime(call.startedAt, 'call start time');
    const endedAt = call.endedAt === undefined ? null : checkTime(call.endedAt, 'call end time');
    const attributes = call.attributes ?? {};
    const indexedAttributes = flattenAttributes(attributes);
    const inputsObject = call.inputs ?? {};
    if (inputsObject === null || typeof inputsObject !== 'object' || Array.isArray(inputsObject)) {
      throw new InvalidValueError('Call inputs must be a plain object of named arguments.');
    }
    const scope = { entity, project };
    const inputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(inputsObject)) inputs[name] = await this.shrink(value, scope);
    const output = call.output === undefined ? undefined : await this.shrink(call.output, scope);
    const row: CallRow = {
      project: key,
      id,
      op_name: call.opName,
      display_name: call.displayName ?? null,
      trace_id: traceId,
      parent_id: parentId,
      started_at: startedAt,
      ended_at: endedAt,
      inputs_json: canonicalJson(inputs),
      output_json: output === undefined ? null : canonicalJson(output),
      attributes_json: canonicalJson(attributes),
      summary_json: canonicalJson(call.summary ?? {}),
      exception: call.exception ?? null,
    };
    return { row, indexedAttributes, ref: formatRef({ kind: 'call', entity, project, id }) };
  }

  private async write(transaction: SqlExecutor, prepared: PreparedCall): Promise<void> {
    const { row, indexedAttributes } = prepared;
    // The start and the end of a call may arrive separately (or again, on retry): later fields fill in, none are lost.
    await transaction.execute(
      `INSERT INTO calls (project, id, op_name, display_name, trace_id, parent_id, started_at, ended_at, inputs_json, output_json,
         attributes_json, summary_json, exception) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (project, id) DO UPDATE SET
         ended_at = COALESCE(excluded.ended_at, calls.ended_at),
         output_json = COALESCE(excluded.output_json, calls.output_json),
         exception = COALESCE(excluded.exception, calls.exception),
         summary_json = CASE WHEN excluded.summary_json = '{}' THEN calls.summary_json ELSE excluded.summary_json END,
         attributes_json = CASE WHEN excluded.attributes_json = '{}' THEN calls.attributes_json ELSE excluded.attributes_json END,
         display_name = COALESCE(excluded.display_name, calls.display_name)`,
      [
        row.project,
        row.id,
        row.op_name,
        row.display_name,
        row.trace_id,
        row.parent_id,
        row.started_at,
        row.ended_at,
        row.inputs_json,
        row.output_json,
        row.attributes_json,
        row.summary_json,
        row.exception,
      ],
    );
    for (const [attributeKey, attributeValue] of indexedAttributes) {
      await transaction.execute(
        `INSERT INTO call_attributes (project, call_id, attribute_key, attribute_value) VALUES (?, ?, ?, ?)
         ON CONFLICT (project, call_id, attribute_key) DO UPDATE SET attribute_value = excluded.attribute_value`,
        [row.project, row.id, attributeKey, String(attributeValue)],
      );
    }
  }

  /** Reads a call by its ref. */
  async get(ref: string): Promise<CallRecord> {
    const parsed = parseRefOfKind(ref, 'call');
    const [row] = await this.context.database.query<CallRow>('SELECT * FROM calls WHERE project = ? AND id = ?', [
      `${parsed.entity}/${parsed.project}`,
      parsed.id,
    ]);
    if (!row) throw new NotFoundError(`The call ${ref} does not exist; list calls with \`weft calls ls\`.`);
    return this.toRecord(row);
  }

  private toRecord(row: CallRow): CallRecord {
    const [entity, project] = row.project.split('/') as [string, string];
    return {
      ref: formatRef({ kind: 'call', entity, project, id: row.id }),
      id: row.id,
      entity,
      project,
      opName: row.op_name,
      displayName: row.display_name,
      traceId: row.trace_id,
      parentId: row.parent_id,
      startedAt: row.started_at,
      endedAt: row.ended_at,
      inputs: parseJson(row.inputs_json),
      output: row.output_json === null ? null : parseJson(row.output_json),
      attributes: parseJson(row.attributes_json),
      summary: parseJson(row.summary_json),
      exception: row.exception,
    };
  }

  /** Calls matching every given filter, oldest first unless `order` says otherwise. */
  async query(filter: CallQuery = {}): Promise<CallRecord[]> {
    const { key } = resolveProject(this.context, filter.entity, filter.project);
    const conditions = ['c.project = ?'];
    const parameters: (string | number)[] = [key];
    if (filter.opName !== undefined) {
      conditions.push('c.op_name = ?');
      parameters.push(filter.opName);
    }
    if (filter.traceId !== undefined) {
      conditions.push('c.trace_id = ?');
      parameters.push(filter.traceId);
    }
    if (filter.parentId !== undefined) {
      conditions.push('c.parent_id = ?');
      parameters.push(filter.parentId);
    }
    if (filter.startedAfter !== undefined) {
      conditions.push('c.started_at >= ?');
      parameters.push(checkTime(filter.startedAfter, 'startedAfter'));
    }
    if (filter.startedBefore !== undefined) {
      conditions.push('c.started_at < ?');
      parameters.push(checkTime(filter.startedBefore, 'startedBefore'));
    }
    if (filter.rootsOnly) conditions.push('c.parent_id IS NULL');
    for (const [attributeKey, attributeValue] of Object.entries(filter.attributes ?? {})) {
      conditions.push(
        'EXISTS (SELECT 1 FROM call_attributes a WHERE a.project = c.project AND a.call_id = c.id AND a.attribute_key = ? AND a.attribute_value = ?)',
      );
      parameters.push(attributeKey, String(attributeValue));
    }
    const limit = filter.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000)
      throw new InvalidValueError('The call query limit must be an integer from 1 to 100000.');
    const offset = filter.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) {
      throw new InvalidValueError('The call query offset must be a whole number from 0.');
    }
    parameters.push(limit, offset);
    const rows = await this.context.database.query<CallRow>(
      `SELECT c.* FROM calls c WHERE ${conditions.join(' AND ')} ORDER BY ${filter.order === 'newest' ? 'c.started_at DESC, c.id DESC' : 'c.started_at, c.id'} LIMIT ? OFFSET ?`,
      parameters,
    );
    return rows.map((row) => this.toRecord(row));
  }

  /** One page of the calls a selection chooses, in its order: at most `limit` rows are read into memory. */
  async select(selection: CallSelection): Promise<CallRecord[]> {
    const { key } = resolveProject(this.context, selection.entity, selection.project);
    if (!Number.isInteger(selection.limit) || selection.limit < 1 || selection.limit > 100_000)
      throw new InvalidValueError('The call selection limit must be an integer from 1 to 100000.');
    const rows = await this.context.database.query<CallRow>(
      `SELECT c.* FROM calls c WHERE c.project = ? AND (${selection.condition}) ORDER BY ${selection.orderBy} LIMIT ? OFFSET ?`,
      [key, ...selection.parameters, ...selection.orderParameters, selection.limit, selection.offset ?? 0],
    );
    return rows.map((row) => this.toRecord(row));
  }

  /** How many calls of the project a condition (as in `select`) chooses, counted in the database. */
  async count(selection: Pick<CallSelection, 'entity' | 'project' | 'condition' | 'parameters'>): Promise<number> {
    const { key } = resolveProject(this.context, selection.entity, selection.project);
    const [row] = await this.context.database.query<{ count: number | string }>(
      `SELECT COUNT(*) AS count FROM calls c WHERE c.project = ? AND (${selection.condition})`,
      [key, ...selection.parameters],
    );
    return Number(row!.count);
  }

  /** Attaches feedback (a score, a note) to a call. */
  async addFeedback(input: FeedbackInput): Promise<Feedback> {
    const call = parseRefOfKind(input.call, 'call');
    const type = validateName('feedback type', input.type);
    if (input.payload === null || typeof input.payload !== 'object' || Array.isArray(input.payload)) {
      throw new InvalidValueError('Feedback payload must be a plain object, e.g. {"correctness": 0.9}.');
    }
    const payloadJson = canonicalJson(input.payload);
    const key = `${call.entity}/${call.project}`;
    return this.context.database.transaction((transaction) =>
      runOnce(
        transaction,
        input.idempotencyKey,
        'calls.addFeedback',
        { call: input.call, type, payloadJson },
        async () => {
          const [exists] = await transaction.query('SELECT 1 AS present FROM calls WHERE project = ? AND id = ?', [
            key,
            call.id,
          ]);
          if (!exists)
            throw new NotFoundError(`The call ${input.call} does not exist; feedback attaches to a logged call.`);
          const feedback: Feedback = {
            id: newId(),
            call: input.call,
            type,
            payload: input.payload,
            creator: input.creator ?? null,
            createdAt: timestamp(),
          };
          await transaction.execute(
            'INSERT INTO feedback (id, project, call_id, feedback_type, payload_json, creator, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
            [feedback.id, key, call.id, type, payloadJson, feedback.creator, feedback.createdAt],
          );
          return feedback;
        },
      ),
    );
  }

  /** Feedback on a call, oldest first. */
  async feedback(callRef: string): Promise<Feedback[]> {
    const call = parseRefOfKind(callRef, 'call');
    const rows = await this.context.database.query<{
      id: string;
      feedback_type: string;
      payload_json: string;
      creator: string | null;
      created_at: string;
    }>(
      'SELECT id, feedback_type, payload_json, creator, created_at FROM feedback WHERE project = ? AND call_id = ? ORDER BY created_at, id',
      [`${call.entity}/${call.project}`, call.id],
    );
    return rows.map((row) => ({
      id: row.id,
      call: callRef,
      type: row.feedback_type,
      payload: parseJson(row.payload_json),
      creator: row.creator,
      createdAt: row.created_at,
    }));
  }
}
