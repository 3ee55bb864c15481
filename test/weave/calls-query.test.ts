import type { CallInput } from '../../lib/lineage';
import { BACKENDS } from '../lineage/support/test-backends';
import { startFixture, TEST_TOKEN, type WeaveServerFixture } from './support/weave-server-fixture';

/**
 * calls/query, calls/stream_query and calls/query_stats answer from the database (filter, sort, count and pages in
 * SQL): over more calls than one database page (500), every query must give what the Weave semantics give — checked
 * here against the expected answer computed from the inserted calls — on SQLite and PostgreSQL.
 */

const CALLS = 1_234;
const PROJECT = 'acme/paging';
const op = (name: string): string => `weave:///acme/paging/op/${name}:v1`;
const REF = 'weave:///acme/paging/object/corpus:abc123';

interface Expected {
  id: string;
  opName: string;
  startedAt: string;
  parentId: string | undefined;
  tenant: string;
  latency: number;
  displayName: string | undefined;
  usesRef: boolean;
}

function makeCalls(): { inputs: CallInput[]; expected: Expected[] } {
  const inputs: CallInput[] = [];
  const expected: Expected[] = [];
  for (let index = 0; index < CALLS; index++) {
    const root = index % 3 === 0;
    const call: Expected = {
      id: `call-${String(index).padStart(5, '0')}`,
      opName: op(root ? 'predict' : index % 3 === 1 ? 'retrieve' : 'generate'),
      // Several calls share a start time, so the (started_at, id) tie-break shows.
      startedAt: new Date(Date.UTC(2026, 0, 1) + Math.floor(index / 4) * 1000).toISOString(),
      parentId: root ? undefined : `call-${String(index - (index % 3)).padStart(5, '0')}`,
      tenant: `tenant-${index % 7}`,
      latency: (index * 37) % 101,
      displayName: index % 5 === 0 ? `Display ${index}` : undefined,
      usesRef: index % 11 === 0,
    };
    expected.push(call);
    inputs.push({
      entity: 'acme',
      project: 'paging',
      id: call.id,
      opName: call.opName,
      traceId: `trace-${Math.floor(index / 3)}`,
      parentId: call.parentId,
      startedAt: call.startedAt,
      displayName: call.displayName,
      inputs: { question: `question ${index}`, ...(call.usesRef ? { corpus: REF } : {}) },
      attributes: { tenant: call.tenant, weave: { source: 'js-sdk' } },
      summary: { weave: { latency_ms: call.latency } },
    });
  }
  return { inputs, expected };
}

const byDefaultOrder = (a: Expected, b: Expected): number =>
  a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.id < b.id ? -1 : 1;

describe.each(BACKENDS)('calls queries in the database (%s)', (backend) => {
  let fixture: WeaveServerFixture;
  let expected: Expected[];

  async function post(route: string, body: unknown): Promise<{ status: number; text: string }> {
    const response = await fetch(`${fixture.server.url}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  }

  async function ids(body: Record<string, unknown>): Promise<string[]> {
    const answer = await post('/calls/stream_query', { project_id: PROJECT, ...body });
    expect(answer.status).toBe(200);
    return answer.text
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => (JSON.parse(line) as { id: string }).id);
  }

  async function count(body: Record<string, unknown>): Promise<number> {
    const answer = await post('/calls/query_stats', { project_id: PROJECT, ...body });
    expect(answer.status).toBe(200);
    return (JSON.parse(answer.text) as { count: number }).count;
  }

  beforeAll(async () => {
    fixture = await startFixture(backend);
    const calls = makeCalls();
    expected = calls.expected;
    await fixture.store.calls.upsertMany(calls.inputs);
  });

  afterAll(async () => {
    await fixture?.dispose();
  });

  it('reads every call once, in (started_at, id) order, page by page and in one unbounded stream', async () => {
    const all = [...expected].sort(byDefaultOrder).map((call) => call.id);
    const pages: string[] = [];
    for (let offset = 0; offset < CALLS; offset += 300) pages.push(...(await ids({ offset, limit: 300 })));
    expect(pages).toEqual(all);
    expect(await ids({})).toEqual(all);
    const query = await post('/calls/query', { project_id: PROJECT, limit: 1 });
    expect(JSON.parse(query.text)).toEqual({ calls: [expect.objectContaining({ id: all[0] })] });
    expect(await count({})).toBe(CALLS);
  });

  it('filters, sorts descending and counts in SQL, the same calls as the Weave semantics choose', async () => {
    const wanted = expected
      .filter((call) => call.opName === op('retrieve') && call.tenant === 'tenant-3')
      .sort((a, b) => -byDefaultOrder(a, b));
    const body = {
      filter: { op_names: [op('retrieve').replace(':v1', ':*')] },
      query: { $expr: { $eq: [{ $getField: 'attributes.tenant' }, { $literal: 'tenant-3' }] } },
      sort_by: [{ field: 'started_at', direction: 'desc' }],
    };
    expect(await ids(body)).toEqual(wanted.map((call) => call.id));
    expect(await ids({ ...body, offset: 10, limit: 5 })).toEqual(wanted.slice(10, 15).map((call) => call.id));
    expect(await count(body)).toBe(wanted.length);

    const roots = expected.filter((call) => call.parentId === undefined);
    expect(await count({ filter: { trace_roots_only: true } })).toBe(roots.length);
    const children = expected.filter((call) => call.parentId === 'call-00003').map((call) => call.id);
    expect(await ids({ filter: { parent_ids: ['call-00003'] } })).toEqual(children);
    expect(await ids({ filter: { call_ids: ['call-00010', 'no such id!', 'call-00002'] } })).toEqual([
      'call-00002',
      'call-00010',
    ]);
  });

  it('answers queries SQL cannot decide alone (case-insensitive text, refs in inputs, $not, JSON sort keys) exactly', async () => {
    const sorted = [...expected].sort(byDefaultOrder);
    // Case-insensitive contains is checked row by row; offset and limit then apply to the matches.
    const shown = sorted.filter((call) => call.displayName?.toLowerCase().includes('display 1'));
    const contains = {
      query: {
        $expr: {
          $contains: {
            input: { $getField: 'display_name' },
            substr: { $literal: 'DISPLAY 1' },
            case_insensitive: true,
          },
        },
      },
    };
    expect(await ids(contains)).toEqual(shown.map((call) => call.id));
    expect(await ids({ ...contains, offset: 3, limit: 4 })).toEqual(shown.slice(3, 7).map((call) => call.id));
    expect(await count(contains)).toBe(shown.length);

    const withRef = sorted.filter((call) => call.usesRef).map((call) => call.id);
    expect(await ids({ filter: { input_refs: [REF] } })).toEqual(withRef);
    expect(await count({ filter: { input_refs: [REF] } })).toBe(withRef.length);

    const notRetrieve = sorted.filter(
      (call) => call.opName !== op('retrieve') && call.startedAt >= sorted[600]!.startedAt,
    );
    const combined = {
      query: {
        $expr: {
          $and: [
            { $not: [{ $eq: [{ $getField: 'op_name' }, { $literal: op('retrieve') }] }] },
            { $gte: [{ $getField: 'started_at' }, { $literal: sorted[600]!.startedAt }] },
          ],
        },
      },
    };
    expect(await ids(combined)).toEqual(notRetrieve.map((call) => call.id));
    expect(await count(combined)).toBe(notRetrieve.length);

    // A sort on a value inside JSON pages by offset: the pages still join into one total order.
    const byLatency = [...sorted].sort((a, b) => b.latency - a.latency || byDefaultOrder(a, b)).map((call) => call.id);
    const sortBy = [{ field: 'summary.weave.latency_ms', direction: 'desc' }];
    const pages: string[] = [];
    for (let offset = 0; offset < CALLS; offset += 700)
      pages.push(...(await ids({ sort_by: sortBy, offset, limit: 700 })));
    expect(pages).toEqual(byLatency);
  });

  it('refuses a page over the server maximum and a malformed query, even one that would match nothing', async () => {
    const tooMany = await post('/calls/query', { project_id: PROJECT, limit: 10_001 });
    expect(tooMany.status).toBe(422);
    expect(tooMany.text).toContain('at most 10000 calls per request; read more pages with offset');
    const badOperator = await post('/calls/stream_query', {
      project_id: PROJECT,
      filter: { call_ids: [] },
      query: { $expr: { $and: [{ $eq: [{ $getField: 'id' }, { $literal: 'x' }] }, { $regex: [] }] } },
    });
    expect(badOperator.status).toBe(422);
    expect(badOperator.text).toContain('\\"$regex\\" is not supported');
    const badStats = await post('/calls/query_stats', { project_id: PROJECT, query: { $expr: { $not: [] } } });
    expect(badStats.status).toBe(422);
    expect(badStats.text).toContain('$not takes a list of one operation.');
  });
});
