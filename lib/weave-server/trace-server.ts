import crypto from 'node:crypto';
import {
  canonicalJson,
  formatRef,
  InvalidValueError,
  LineageError,
  NotFoundError,
  rowDigest,
  validateName,
  type CallAttributeValue,
  type CallInput,
  type CallRecord,
  type LineageStore,
  type SqlValue,
  type ObjectVersion,
} from '../lineage';
import { UnsupportedRequestError } from './errors';
import { compileExpression, compileFilter, compileSort, type SortKey } from './calls-query-plan';
import { matchesQuery, readField } from './query-expression';
import type { z } from 'zod';
import type {
  CompletedCall,
  callsQueryRequest,
  callsQueryStatsRequest,
  callUpdateRequest,
  EndedCall,
  feedbackCreateRequest,
  feedbackQueryRequest,
  objectCreateRequest,
  objectReadRequest,
  objectsQueryRequest,
  StartedCall,
  tableQueryRequest,
  tableUpdateRequest,
  CallsFilter,
} from './schemas';

/** A call as the Weave trace server returns it (`CallSchema`). */
export interface WeaveCallSchema {
  id: string;
  project_id: string;
  op_name: string;
  display_name: string | null;
  trace_id: string;
  parent_id: string | null;
  started_at: string;
  ended_at: string | null;
  exception: string | null;
  attributes: Record<string, unknown>;
  inputs: Record<string, unknown>;
  output: unknown;
  summary: Record<string, unknown>;
  wb_user_id: string | null;
  wb_run_id: string | null;
  deleted_at: string | null;
}

/** An object version as the Weave trace server returns it (`ObjSchema`). */
export interface WeaveObjectSchema {
  project_id: string;
  object_id: string;
  created_at: string;
  deleted_at: null;
  digest: string;
  version_index: number;
  is_latest: number;
  kind: 'op' | 'object';
  base_object_class: string | null;
  val: unknown;
}

/** Call inputs and outputs larger than this become `CallValue` objects, as the store itself does (its default). */
const LARGE_CALL_VALUE_BYTES = 64 * 1024;
/** Ends that arrived before their start wait here, bounded, until the start comes (the SDK sends start first). */
const MAX_PENDING_ENDS = 10_000;
/** Calls read from the database at a time by a calls query (memory holds one such page per running query). */
const CALLS_PAGE_SIZE = 500;

/** Reads a sort key's value from a call record (the keys that allow keyset pagination are these columns). */
const RECORD_FIELDS: Record<string, (call: CallRecord) => string> = {
  id: (call) => call.id,
  op_name: (call) => call.opName,
  trace_id: (call) => call.traceId,
  started_at: (call) => call.startedAt,
};

/** "After this row" in a total order of keys: (k1 > v1) OR (k1 = v1 AND k2 > v2) OR … (`<` for a descending key). */
function keysetCondition(keys: SortKey[], after: CallRecord): { sql: string; parameters: SqlValue[] } {
  const alternatives: string[] = [];
  const parameters: SqlValue[] = [];
  keys.forEach((key, index) => {
    const equalities = keys.slice(0, index);
    alternatives.push(
      [...equalities.map((equal) => `${equal.sql} = ?`), `${key.sql} ${key.direction === 'asc' ? '>' : '<'} ?`].join(
        ' AND ',
      ),
    );
    for (const equal of equalities) parameters.push(RECORD_FIELDS[equal.field!]!(after));
    parameters.push(RECORD_FIELDS[key.field!]!(after));
  });
  return { sql: alternatives.map((alternative) => `(${alternative})`).join(' OR '), parameters };
}

export interface ProjectScope {
  entity: string;
  project: string;
}

/** `entity/project` → its parts, with the store's naming rules. */
export function parseProjectId(projectId: string): ProjectScope {
  const parts = projectId.split('/');
  if (parts.length !== 2) {
    throw new InvalidValueError(
      `The project_id "${projectId}" must be "<entity>/<project>"; call weave.init('<entity>/<project>').`,
    );
  }
  return { entity: validateName('entity', parts[0]), project: validateName('project', parts[1]) };
}

/** A v2 route names its project in the path; every record it carries must belong to that project. */
export function requireSameProject(scope: ProjectScope, projectId: string): void {
  if (projectId !== `${scope.entity}/${scope.project}`) {
    throw new UnsupportedRequestError(
      `The record's project_id "${projectId}" differs from the project in the path (${scope.entity}/${scope.project}).`,
    );
  }
}

/**
 * Attributes as the store indexes them: scalars and records of scalars. A null or a list (which the SDK lets
 * users attach) is kept as its JSON text rather than failing the whole call.
 */
function storableAttributes(value: Record<string, unknown>): Record<string, CallAttributeValue> {
  const convert = (item: unknown): CallAttributeValue => {
    if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') return item;
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      return Object.fromEntries(Object.entries(item).map(([key, nested]) => [key, convert(nested)]));
    }
    return JSON.stringify(item);
  };
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, convert(item)]));
}

function isOpValue(value: unknown): boolean {
  const weaveType = readField(value, 'weave_type.type');
  return readField(value, '_type') === 'CustomWeaveType' && weaveType === 'Op';
}

function toObjectSchema(version: ObjectVersion, includeValue = true): WeaveObjectSchema {
  const bases = readField(version.value, '_bases');
  return {
    project_id: `${version.entity}/${version.project}`,
    object_id: version.name,
    created_at: version.createdAt,
    deleted_at: null,
    digest: version.digest,
    version_index: version.version,
    is_latest: version.isLatest ? 1 : 0,
    kind: isOpValue(version.value) ? 'op' : 'object',
    base_object_class: Array.isArray(bases) && typeof bases[0] === 'string' ? bases[0] : null,
    val: includeValue ? version.value : null,
  };
}

/** The weave SDK's call record shape for a stored call. */
export function toCallSchema(call: CallRecord): WeaveCallSchema {
  return {
    id: call.id,
    project_id: `${call.entity}/${call.project}`,
    op_name: call.opName,
    display_name: call.displayName,
    trace_id: call.traceId,
    parent_id: call.parentId,
    started_at: call.startedAt,
    ended_at: call.endedAt,
    exception: call.exception,
    attributes: call.attributes,
    inputs: call.inputs,
    output: call.output,
    summary: call.summary,
    wb_user_id: null,
    wb_run_id: typeof call.attributes['wandb-run-id'] === 'string' ? call.attributes['wandb-run-id'] : null,
    deleted_at: null,
  };
}

/** Orders records by one (dotted) field; missing values first ascending. */
export function compareBy(field: string, direction: 'asc' | 'desc') {
  const sign = direction === 'asc' ? 1 : -1;
  return (left: unknown, right: unknown): number => {
    const a = readField(left, field);
    const b = readField(right, field);
    if (a === b) return 0;
    if (a === undefined || a === null) return -sign;
    if (b === undefined || b === null) return sign;
    return (a < b ? -1 : 1) * sign;
  };
}

function sortRecords<T>(records: T[], sortBy: { field: string; direction: 'asc' | 'desc' }[] | null | undefined): T[] {
  if (!sortBy || sortBy.length === 0) return records;
  const comparators = sortBy.map((item) => compareBy(item.field, item.direction));
  return [...records].sort((left, right) => {
    for (const comparator of comparators) {
      const order = comparator(left, right);
      if (order !== 0) return order;
    }
    return 0;
  });
}

function page<T>(records: T[], offset: number | null | undefined, limit: number | null | undefined): T[] {
  const start = offset ?? 0;
  return records.slice(start, limit === null || limit === undefined ? undefined : start + limit);
}

function matchesOpName(opName: string, patterns: string[]): boolean {
  // The Weave server accepts `…/op/<name>:*` for every version of an op.
  return patterns.some((pattern) =>
    pattern.endsWith(':*') ? opName.startsWith(pattern.slice(0, -1)) : opName === pattern,
  );
}

function refsIn(value: unknown, found: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string' && value.startsWith('weave:///')) found.add(value);
  else if (Array.isArray(value)) value.forEach((item) => refsIn(item, found));
  else if (value !== null && typeof value === 'object') Object.values(value).forEach((item) => refsIn(item, found));
  return found;
}

/** The structured filter of a calls query, in memory (for rows a SQL condition could only narrow down). */
export function matchesFilter(call: WeaveCallSchema, filter: CallsFilter): boolean {
  if (!filter) return true;
  if (filter.op_names && !matchesOpName(call.op_name, filter.op_names)) return false;
  if (filter.call_ids && !filter.call_ids.includes(call.id)) return false;
  if (filter.trace_ids && !filter.trace_ids.includes(call.trace_id)) return false;
  if (filter.parent_ids && (call.parent_id === null || !filter.parent_ids.includes(call.parent_id))) return false;
  if (filter.trace_roots_only && call.parent_id !== null) return false;
  if (filter.wb_run_ids && (call.wb_run_id === null || !filter.wb_run_ids.includes(call.wb_run_id))) return false;
  if (filter.wb_user_ids && filter.wb_user_ids.length > 0) return false;
  if (filter.input_refs) {
    const refs = refsIn(call.inputs);
    if (!filter.input_refs.some((ref) => refs.has(ref))) return false;
  }
  if (filter.output_refs) {
    const refs = refsIn(call.output);
    if (!filter.output_refs.some((ref) => refs.has(ref))) return false;
  }
  return true;
}

/** What `weave:///<entity>/<project>/<kind>/<name>:<digest>[/attr/<a>/id/<row digest>…]` names. */
interface ParsedWeaveUri {
  scope: ProjectScope;
  kind: 'object' | 'op' | 'table' | 'call';
  name: string;
  digest: string;
  extra: string[];
}

function parseWeaveUri(uri: string): ParsedWeaveUri {
  const fail = (): never => {
    throw new InvalidValueError(
      `The ref ${JSON.stringify(uri)} is not a Weave ref; expected weave:///<entity>/<project>/object/<name>:<digest> (or op/…, table/<digest>, call/<id>).`,
    );
  };
  if (!uri.startsWith('weave:///')) fail();
  const parts = uri.slice('weave:///'.length).split('/');
  if (parts.length < 4) fail();
  const [entity, project, kind, head, ...extra] = parts as [string, string, string, string, ...string[]];
  const scope = parseProjectId(`${entity}/${project}`);
  if (kind === 'object' || kind === 'op') {
    const colon = head.lastIndexOf(':');
    if (colon <= 0) fail();
    return { scope, kind, name: head.slice(0, colon), digest: head.slice(colon + 1), extra };
  }
  if (kind === 'table' || kind === 'call') return { scope, kind, name: '', digest: head, extra };
  return fail();
}

/**
 * The Weave trace-server API over the lineage store: each method takes a validated request body and
 * returns the response body the weave SDK expects. HTTP concerns (auth, routing, status codes) live in http-server.ts.
 */
export class WeaveTraceServer {
  private readonly pendingEnds = new Map<string, EndedCall>();

  constructor(
    private readonly store: LineageStore,
    /** The entity `weave.init('<project>')` (no entity) resolves to. */
    private readonly defaultEntity: string,
    /** Told about each call of a batch that was skipped because the store cannot take it (never silent). */
    private readonly onRejectedCall?: (error: Error, what: string) => void,
  ) {}

  serverInfo(): { min_required_weave_python_version: string } {
    return { min_required_weave_python_version: '0.0.1' };
  }

  /** A value small enough for a call row, or the ref of a `CallValue` object holding it (SDK refs inside are kept as written). */
  private async storableCallValue(value: unknown, scope: ProjectScope): Promise<unknown> {
    if (value === undefined || value === null) return value;
    if (Buffer.byteLength(canonicalJson(value)) <= LARGE_CALL_VALUE_BYTES) return value;
    const published = await this.store.objects.publish({
      ...scope,
      name: 'CallValue',
      value,
      acceptWeaveSdkRefs: true,
    });
    return published.ref;
  }

  async startCall(start: StartedCall): Promise<{ id: string; trace_id: string }> {
    const scope = parseProjectId(start.project_id);
    const id = start.id ?? crypto.randomUUID();
    const traceId = start.trace_id ?? crypto.randomUUID();
    const inputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(start.inputs)) inputs[name] = await this.storableCallValue(value, scope);
    await this.store.calls.upsert({
      ...scope,
      id,
      opName: start.op_name,
      displayName: start.display_name ?? undefined,
      traceId,
      parentId: start.parent_id ?? undefined,
      startedAt: start.started_at,
      inputs,
      attributes: storableAttributes(start.attributes),
    });
    const pendingKey = `${start.project_id}/${id}`;
    const pending = this.pendingEnds.get(pendingKey);
    if (pending) {
      this.pendingEnds.delete(pendingKey);
      await this.endCall(pending);
    }
    await this.attachPendingFeedback(scope, id);
    return { id, trace_id: traceId };
  }

  /**
   * Calls sent whole (weave 0.54's `/v2/{entity}/{project}/calls/complete`): each is a start and an end. As in
   * upsert_batch, one call the store cannot take is skipped and reported; a busy store fails the batch (retried).
   */
  async completeCalls(scope: ProjectScope, batch: CompletedCall[]): Promise<Record<string, never>> {
    const inputs: CallInput[] = [];
    for (const call of batch) {
      try {
        requireSameProject(scope, call.project_id);
        const callInputs: Record<string, unknown> = {};
        for (const [name, value] of Object.entries(call.inputs))
          callInputs[name] = await this.storableCallValue(value, scope);
        inputs.push({
          ...scope,
          id: call.id,
          opName: call.op_name,
          displayName: call.display_name ?? undefined,
          traceId: call.trace_id ?? crypto.randomUUID(),
          parentId: call.parent_id ?? undefined,
          startedAt: call.started_at,
          endedAt: call.ended_at,
          inputs: callInputs,
          attributes: storableAttributes(call.attributes),
          output: call.output === undefined ? undefined : await this.storableCallValue(call.output, scope),
          summary: call.summary,
          exception: call.exception ?? undefined,
        });
      } catch (error) {
        if (!(error instanceof LineageError || error instanceof UnsupportedRequestError) || error.retryable)
          throw error;
        this.onRejectedCall?.(error, `complete call ${call.id}`);
      }
    }
    // Start and end arrive together: one write per call, the whole batch in one transaction.
    const written = await this.store.calls.upsertMany(inputs);
    for (const { index, error } of written.rejected) this.onRejectedCall?.(error, `complete call ${inputs[index]!.id}`);
    const stored = written.refs.map((ref) => ref.slice(ref.lastIndexOf('/') + 1));
    // Scores sent before these calls wait in pending_feedback; feedback arriving from now on finds its call stored.
    const waiting = new Set(
      (
        await this.store.database.query<{ call_id: string }>(
          'SELECT DISTINCT call_id FROM pending_feedback WHERE project = ?',
          [`${scope.entity}/${scope.project}`],
        )
      ).map((row) => row.call_id),
    );
    for (const id of stored) if (waiting.has(id)) await this.attachPendingFeedback(scope, id);
    return {};
  }

  /** Feedback kept for a call that had not arrived yet moves onto the call (idempotently: a crash mid-way repeats safely). */
  private async attachPendingFeedback(scope: ProjectScope, callId: string): Promise<void> {
    const project = `${scope.entity}/${scope.project}`;
    const rows = await this.store.database.query<{
      id: string;
      feedback_type: string;
      payload_json: string;
      creator: string | null;
    }>(
      'SELECT id, feedback_type, payload_json, creator FROM pending_feedback WHERE project = ? AND call_id = ? ORDER BY created_at, id',
      [project, callId],
    );
    for (const row of rows) {
      await this.store.calls.addFeedback({
        call: formatRef({ kind: 'call', ...scope, id: callId }),
        type: row.feedback_type,
        payload: JSON.parse(row.payload_json) as Record<string, unknown>,
        creator: row.creator ?? undefined,
        idempotencyKey: `pending-feedback:${row.id}`,
      });
      await this.store.database.execute('DELETE FROM pending_feedback WHERE id = ?', [row.id]);
    }
  }

  async endCall(end: EndedCall): Promise<Record<string, never>> {
    const scope = parseProjectId(end.project_id);
    let existing: CallRecord;
    try {
      existing = await this.store.calls.get(formatRef({ kind: 'call', ...scope, id: end.id }));
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      // The start may still be on its way (another batch, another connection): keep the end until it lands.
      if (this.pendingEnds.size >= MAX_PENDING_ENDS) {
        throw new UnsupportedRequestError(
          `The call ${end.id} was never started; send its start (call/start or a "start" item in call/upsert_batch) before its end.`,
        );
      }
      const pendingKey = `${end.project_id}/${end.id}`;
      this.pendingEnds.set(pendingKey, end);
      // The start may have landed while we looked: then nobody else will pick this end up, so apply it now.
      if (await this.callExists(scope, end.id)) {
        this.pendingEnds.delete(pendingKey);
        return this.endCall(end);
      }
      return {};
    }
    await this.store.calls.upsert({
      ...scope,
      id: existing.id,
      opName: existing.opName,
      traceId: existing.traceId,
      parentId: existing.parentId ?? undefined,
      startedAt: existing.startedAt,
      endedAt: end.ended_at,
      // Weave records a failed call's output as null; null is "no output yet" for the store, so only a success writes one.
      output: end.output === undefined ? undefined : await this.storableCallValue(end.output, scope),
      summary: end.summary,
      exception: end.exception ?? undefined,
      displayName: end.display_name ?? undefined,
    });
    return {};
  }

  private async callExists(scope: ProjectScope, id: string): Promise<boolean> {
    try {
      await this.store.calls.get(formatRef({ kind: 'call', ...scope, id }));
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }

  async upsertBatch(
    batch: ({ mode: 'start'; req: { start: StartedCall } } | { mode: 'end'; req: { end: EndedCall } })[],
  ): Promise<{ res: ({ id: string; trace_id: string } | Record<string, never>)[] }> {
    const results: ({ id: string; trace_id: string } | Record<string, never>)[] = [];
    // In order: an end must find the start sent before it in the same batch.
    for (const item of batch) {
      try {
        results.push(item.mode === 'start' ? await this.startCall(item.req.start) : await this.endCall(item.req.end));
      } catch (error) {
        // The SDK resends a failed batch unchanged and exits its process after 11 failures: one call the store
        // cannot take must not fail the others. It is skipped and reported; a busy store fails the batch (retried).
        if (!(error instanceof LineageError || error instanceof UnsupportedRequestError) || error.retryable)
          throw error;
        const id = item.mode === 'start' ? item.req.start.id : item.req.end.id;
        this.onRejectedCall?.(error, `${item.mode} of call ${id ?? '(no id)'}`);
        results.push({});
      }
    }
    return { res: results };
  }

  async readCall(projectId: string, id: string): Promise<{ call: WeaveCallSchema | null }> {
    const scope = parseProjectId(projectId);
    try {
      return { call: toCallSchema(await this.store.calls.get(formatRef({ kind: 'call', ...scope, id }))) };
    } catch (error) {
      if (error instanceof NotFoundError) return { call: null };
      throw error;
    }
  }

  async updateCall(request: z.infer<typeof callUpdateRequest>): Promise<Record<string, never>> {
    const scope = parseProjectId(request.project_id);
    const existing = await this.store.calls.get(formatRef({ kind: 'call', ...scope, id: request.call_id }));
    if (request.display_name === null || request.display_name === undefined) return {};
    await this.store.calls.upsert({
      ...scope,
      id: existing.id,
      opName: existing.opName,
      traceId: existing.traceId,
      parentId: existing.parentId ?? undefined,
      startedAt: existing.startedAt,
      displayName: request.display_name,
    });
    return {};
  }

  /**
   * Calls matching a query, in the requested order, as pages read from the database one after another: filter,
   * sort, offset and limit run in SQL (lib/weave-server/calls-query-plan.ts), so memory holds one page whatever the
   * project's size. The request is checked and the first page read before this returns, so a bad query or a down
   * database is an error status rather than a broken stream.
   */
  async queryCalls(request: z.infer<typeof callsQueryRequest>): Promise<AsyncIterable<WeaveCallSchema[]>> {
    const pages = this.callPages(request);
    const first = await pages.next();
    return (async function* () {
      if (first.done) return;
      yield first.value;
      yield* pages;
    })();
  }

  /** How many calls match a query: counted by the database when the whole query translates to SQL, else page by page. */
  async countCalls(request: z.infer<typeof callsQueryStatsRequest>): Promise<number> {
    const plan = this.planCallsQuery(request);
    if (plan.condition.exact) {
      return this.store.calls.count({
        ...plan.scope,
        condition: plan.condition.sql,
        parameters: plan.condition.parameters,
      });
    }
    let count = 0;
    for await (const page of this.callPages(request)) count += page.length;
    return count;
  }

  private planCallsQuery(request: z.infer<typeof callsQueryStatsRequest>) {
    const scope = parseProjectId(request.project_id);
    const context = { dialect: this.store.database.dialect, project: `${scope.entity}/${scope.project}` };
    const filter = compileFilter(request.filter, context);
    const query = request.query ? compileExpression(request.query.$expr, context) : undefined;
    const condition = {
      sql: query ? `(${filter.sql}) AND (${query.sql})` : filter.sql,
      parameters: [...filter.parameters, ...(query?.parameters ?? [])],
      exact: filter.exact && (query?.exact ?? true),
    };
    const matches = (call: WeaveCallSchema): boolean =>
      matchesFilter(call, request.filter) && matchesQuery(request.query, call);
    return { scope, condition, matches };
  }

  /**
   * The pages of a calls query. An exact plan pages in SQL (OFFSET once, then keyset pagination after the last row
   * when the order is on columns, so each page is an index range). An inexact plan reads the SQL-narrowed rows from
   * the start and applies the query's evaluator, offset and limit as they stream by.
   */
  private async *callPages(request: z.infer<typeof callsQueryRequest>): AsyncGenerator<WeaveCallSchema[]> {
    const plan = this.planCallsQuery(request);
    const keys = compileSort(request.sort_by, this.store.database.dialect);
    const orderBy = keys.map((key) => `${key.sql} ${key.direction === 'asc' ? 'ASC' : 'DESC'}`).join(', ');
    const orderParameters = keys.flatMap((key) => key.parameters);
    const keyset = keys.every((key) => key.field !== undefined);
    let remaining = request.limit ?? Number.POSITIVE_INFINITY;
    let toSkip = plan.condition.exact ? 0 : (request.offset ?? 0);
    let sqlOffset = plan.condition.exact ? (request.offset ?? 0) : 0;
    let after: CallRecord | undefined;
    while (remaining > 0) {
      const pageSize = plan.condition.exact ? Math.min(CALLS_PAGE_SIZE, remaining) : CALLS_PAGE_SIZE;
      const position = keyset && after ? keysetCondition(keys, after) : undefined;
      const records = await this.store.calls.select({
        ...plan.scope,
        condition: position ? `(${plan.condition.sql}) AND (${position.sql})` : plan.condition.sql,
        parameters: [...plan.condition.parameters, ...(position?.parameters ?? [])],
        orderBy,
        orderParameters,
        limit: pageSize,
        offset: position ? 0 : sqlOffset,
      });
      sqlOffset += records.length;
      after = records[records.length - 1];
      const page: WeaveCallSchema[] = [];
      for (const record of records) {
        const call = toCallSchema(record);
        if (!plan.condition.exact) {
          if (!plan.matches(call)) continue;
          if (toSkip > 0) {
            toSkip--;
            continue;
          }
        }
        if (remaining <= 0) break;
        page.push(call);
        remaining--;
      }
      if (page.length > 0) yield page;
      if (records.length < pageSize) return;
    }
  }

  async publishObject(request: z.infer<typeof objectCreateRequest>): Promise<{ digest: string }> {
    const scope = parseProjectId(request.obj.project_id);
    const published = await this.store.objects.publish({
      ...scope,
      name: request.obj.object_id,
      value: request.obj.val,
      acceptWeaveSdkRefs: true,
    });
    return { digest: published.digest };
  }

  async readObject(request: z.infer<typeof objectReadRequest>): Promise<{ obj: WeaveObjectSchema }> {
    const scope = parseProjectId(request.project_id);
    const name = validateName('object name', request.object_id);
    const version = await this.store.objects.get(formatRef({ kind: 'object', ...scope, name, digest: request.digest }));
    return { obj: toObjectSchema(version) };
  }

  async queryObjects(request: z.infer<typeof objectsQueryRequest>): Promise<{ objs: WeaveObjectSchema[] }> {
    const scope = parseProjectId(request.project_id);
    const filter = request.filter;
    const names = filter?.object_ids ?? (await this.store.objects.list(scope)).map((summary) => summary.name);
    const objects: WeaveObjectSchema[] = [];
    for (const name of names) {
      let versions: ObjectVersion[];
      try {
        versions = filter?.latest_only
          ? [await this.store.objects.latest(name, scope)]
          : await this.store.objects.versions(name, scope);
      } catch (error) {
        if (error instanceof NotFoundError) continue;
        throw error;
      }
      for (const version of versions) {
        const schema = toObjectSchema(version, !request.metadata_only);
        if (filter?.is_op !== null && filter?.is_op !== undefined && (schema.kind === 'op') !== filter.is_op) continue;
        if (filter?.base_object_classes && !filter.base_object_classes.includes(schema.base_object_class ?? '')) {
          continue;
        }
        objects.push(schema);
      }
    }
    return { objs: page(sortRecords(objects, request.sort_by), request.offset, request.limit) };
  }

  async createTable(
    projectId: string,
    rows: Record<string, unknown>[],
  ): Promise<{ digest: string; row_digests: string[] }> {
    const scope = parseProjectId(projectId);
    const table = await this.store.tables.create({ ...scope, rows });
    return { digest: table.digest, row_digests: table.rowDigests };
  }

  async updateTable(
    request: z.infer<typeof tableUpdateRequest>,
  ): Promise<{ digest: string; updated_row_digests: string[] }> {
    const scope = parseProjectId(request.project_id);
    const base = await this.store.tables.rows(formatRef({ kind: 'table', ...scope, digest: request.base_digest }));
    const rows = base.map((row) => row.value);
    const touched: Record<string, unknown>[] = [];
    for (const update of request.updates) {
      if ('append' in update) {
        rows.push(update.append.row);
        touched.push(update.append.row);
      } else if ('pop' in update) {
        if (update.pop.index >= rows.length) {
          throw new InvalidValueError(`Cannot pop row ${update.pop.index}: the table has ${rows.length} rows.`);
        }
        rows.splice(update.pop.index, 1);
      } else {
        if (update.insert.index > rows.length) {
          throw new InvalidValueError(
            `Cannot insert at row ${update.insert.index}: the table has ${rows.length} rows.`,
          );
        }
        rows.splice(update.insert.index, 0, update.insert.row);
        touched.push(update.insert.row);
      }
    }
    const table = await this.store.tables.create({ ...scope, rows });
    const touchedSet = new Set(touched);
    return {
      digest: table.digest,
      updated_row_digests: table.rowDigests.filter((_, index) => touchedSet.has(rows[index]!)),
    };
  }

  async queryTable(request: z.infer<typeof tableQueryRequest>): Promise<{ rows: { digest: string; val: unknown }[] }> {
    const scope = parseProjectId(request.project_id);
    const ref = formatRef({ kind: 'table', ...scope, digest: request.digest });
    const wanted = request.filter?.row_digests;
    const simple = !wanted && !request.sort_by?.length;
    // Without a filter or a sort the store pages by itself; otherwise the whole table is read and shaped here.
    const rows = simple
      ? await this.store.tables.rows(ref, { offset: request.offset ?? 0, limit: request.limit ?? undefined })
      : await this.store.tables.rows(ref);
    let shaped = rows.map((row) => ({ digest: row.digest, val: row.value as unknown }));
    if (simple) return { rows: shaped };
    if (wanted) shaped = shaped.filter((row) => wanted.includes(row.digest));
    const sortBy = request.sort_by?.map((item) => ({ field: `val.${item.field}`, direction: item.direction }));
    return { rows: page(sortRecords(shaped, sortBy), request.offset, request.limit) };
  }

  async tableRowCount(projectId: string, digest: string): Promise<{ count: number }> {
    const scope = parseProjectId(projectId);
    const digests = await this.store.tables.rowDigests(formatRef({ kind: 'table', ...scope, digest }));
    return { count: digests.length };
  }

  async createFile(projectId: string, bytes: Uint8Array): Promise<{ digest: string }> {
    const scope = parseProjectId(projectId);
    const file = await this.store.files.put(bytes, scope);
    return { digest: file.digest };
  }

  async fileContent(projectId: string, digest: string): Promise<Buffer> {
    return this.store.files.get(digest, parseProjectId(projectId));
  }

  async createFeedback(
    request: z.infer<typeof feedbackCreateRequest>,
  ): Promise<{ id: string; created_at: string; wb_user_id: string; payload: Record<string, unknown> }> {
    parseProjectId(request.project_id);
    const target = parseWeaveUri(request.weave_ref);
    if (target.kind !== 'call' || target.extra.length > 0) {
      throw new UnsupportedRequestError(
        `weft stores feedback on calls only; ${request.weave_ref} is not a call ref (weave:///<entity>/<project>/call/<id>).`,
      );
    }
    const scope = target.scope;
    const callId = target.digest;
    try {
      const feedback = await this.store.calls.addFeedback({
        call: request.weave_ref,
        type: request.feedback_type,
        payload: request.payload,
        creator: request.creator ?? undefined,
        idempotencyKey: request.id ? `feedback:${request.weave_ref}:${request.id}` : undefined,
      });
      return {
        id: feedback.id,
        created_at: feedback.createdAt,
        wb_user_id: feedback.creator ?? 'weft',
        payload: feedback.payload,
      };
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    // The SDK flushes scores before the call batch they score: keep the feedback until its call arrives.
    validateName('feedback type', request.feedback_type);
    const id = request.id ?? crypto.randomUUID();
    const createdAt = new Date().toISOString();
    await this.store.database.execute(
      'INSERT INTO pending_feedback (id, project, call_id, feedback_type, payload_json, creator, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      [
        id,
        `${scope.entity}/${scope.project}`,
        callId,
        request.feedback_type,
        canonicalJson(request.payload),
        request.creator ?? null,
        createdAt,
      ],
    );
    // The call may have landed while we looked: then nobody else attaches this feedback, so do it now.
    if (await this.callExists(scope, callId)) await this.attachPendingFeedback(scope, callId);
    return { id, created_at: createdAt, wb_user_id: request.creator ?? 'weft', payload: request.payload };
  }

  /** `/feedback/batch/create`: each item as `/feedback/create`, answered in order. */
  async createFeedbackBatch(
    batch: z.infer<typeof feedbackCreateRequest>[],
  ): Promise<{ res: Awaited<ReturnType<WeaveTraceServer['createFeedback']>>[] }> {
    const res = [];
    for (const item of batch) res.push(await this.createFeedback(item));
    return { res };
  }

  /** Feedback received for calls that have not arrived (yet), per project: what a lost call would leave behind. */
  async pendingFeedbackCount(projectId: string): Promise<number> {
    const scope = parseProjectId(projectId);
    const [row] = await this.store.database.query<{ count: number }>(
      'SELECT COUNT(*) AS count FROM pending_feedback WHERE project = ?',
      [`${scope.entity}/${scope.project}`],
    );
    return Number(row!.count);
  }

  /** Feedback of one call: the query must hold `{"$eq": [{"$getField": "weave_ref"}, {"$literal": "<call ref>"}]}`. */
  async queryFeedback(request: z.infer<typeof feedbackQueryRequest>): Promise<{ result: Record<string, unknown>[] }> {
    parseProjectId(request.project_id);
    const callRef = findWeaveRefEquality(request.query?.$expr);
    if (callRef === undefined) {
      throw new UnsupportedRequestError(
        'weft answers feedback/query for one call at a time: pass query {"$expr": {"$eq": [{"$getField": "weave_ref"}, {"$literal": "weave:///<entity>/<project>/call/<id>"}]}}.',
      );
    }
    const feedback = await this.store.calls.feedback(callRef);
    const result = feedback.map((item) => ({
      id: item.id,
      project_id: request.project_id,
      weave_ref: item.call,
      feedback_type: item.type,
      payload: item.payload,
      creator: item.creator,
      created_at: item.createdAt,
      wb_user_id: item.creator ?? 'weft',
    }));
    return { result: page(result, request.offset, request.limit) };
  }

  /** Values of object, op, table and dataset-row refs, in request order. */
  async readRefs(refs: string[]): Promise<{ vals: unknown[] }> {
    const values: unknown[] = [];
    for (const uri of refs) values.push(await this.readRef(uri));
    return { vals: values };
  }

  private async readRef(uri: string): Promise<unknown> {
    const target = parseWeaveUri(uri);
    if (target.kind === 'call') {
      return toCallSchema(await this.store.calls.get(formatRef({ kind: 'call', ...target.scope, id: target.digest })));
    }
    let value: unknown;
    if (target.kind === 'table') {
      value = (await this.store.tables.rows(formatRef({ kind: 'table', ...target.scope, digest: target.digest }))).map(
        (row) => row.value,
      );
    } else {
      const name = validateName('object name', target.name);
      value = (
        await this.store.objects.get(formatRef({ kind: 'object', ...target.scope, name, digest: target.digest }))
      ).value;
    }
    // Follow `/attr/<name>` and `/id/<row digest>` (how the SDK names a Dataset row) step by step.
    for (let index = 0; index < target.extra.length; index += 2) {
      const step = target.extra[index];
      const argument = target.extra[index + 1];
      if (argument === undefined) throw new InvalidValueError(`The ref ${uri} ends in "${step}" without a value.`);
      if (typeof value === 'string' && value.startsWith('weave:///')) value = await this.readRef(value);
      if (step === 'attr' || step === 'key') value = readField(value, argument);
      else if (step === 'index') value = Array.isArray(value) ? value[Number(argument)] : undefined;
      else if (step === 'id') {
        value = Array.isArray(value) ? this.rowByDigest(uri, value, argument) : undefined;
      } else throw new InvalidValueError(`The ref ${uri} has the unknown step "${step}"; known: attr, key, index, id.`);
    }
    return value ?? null;
  }

  private rowByDigest(uri: string, rows: unknown[], digest: string): unknown {
    const found = rows.find((row) => rowDigest(row) === digest);
    if (found === undefined) throw new NotFoundError(`The row ${digest} named by ${uri} is not in its table.`);
    return found;
  }
}

function findWeaveRefEquality(expression: unknown): string | undefined {
  if (expression === null || typeof expression !== 'object') return undefined;
  const record = expression as Record<string, unknown>;
  if (Array.isArray(record.$and)) {
    for (const item of record.$and) {
      const found = findWeaveRefEquality(item);
      if (found !== undefined) return found;
    }
  }
  const operands = record.$eq;
  if (Array.isArray(operands) && operands.length === 2) {
    const [left, right] = operands as [Record<string, unknown>, Record<string, unknown>];
    if (left?.$getField === 'weave_ref' && typeof right?.$literal === 'string') return right.$literal;
    if (right?.$getField === 'weave_ref' && typeof left?.$literal === 'string') return left.$literal;
  }
  return undefined;
}
