import { startWeaveServer } from '../../lib/weave-server';
import { startFixture, TEST_TOKEN, type WeaveServerFixture } from './support/weave-server-fixture';

const authorization = `Basic ${Buffer.from(`api:${TEST_TOKEN}`).toString('base64')}`;
/** 100,000 levels of nested lists, as raw JSON text (JSON.stringify of such a value would itself overflow). */
const deepJson = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;

describe('weft serve: JSON depth limits (finding 4)', () => {
  let fixture: WeaveServerFixture;

  beforeAll(async () => {
    fixture = await startFixture();
  });

  afterAll(async () => {
    await fixture?.dispose();
  });

  it('a body nested 100k levels answers 400 naming the limit, and a deep call in a batch is skipped, the rest stored', async () => {
    const reported: string[] = [];
    const server = await startWeaveServer({
      store: fixture.store,
      token: TEST_TOKEN,
      port: 0,
      onError: (error, request) => reported.push(`${request.path}: ${error.message}`),
    });
    const post = (path: string, body: string) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body,
      });
    try {
      const deepObject = await post(
        '/obj/create',
        `{"obj": {"project_id": "acme/deep", "object_id": "Deep", "val": ${deepJson}}}`,
      );
      expect(deepObject.status).toBe(400);
      expect(await deepObject.text()).toContain('nests deeper than 1000 levels');

      const start = (id: string, inputs: string) =>
        `{"mode": "start", "req": {"start": {"project_id": "acme/deep", "id": "${id}", "op_name": "weave:///acme/deep/op/step:d1", ` +
        `"trace_id": "trace-d", "started_at": "2026-01-01T00:00:00.000Z", "attributes": {}, "inputs": ${inputs}}}}`;
      const batch = await post(
        '/call/upsert_batch',
        `{"batch": [${start('before', '{}')}, ${start('deep', `{"x": ${deepJson}}`)}, ${start('after', '{}')}]}`,
      );
      expect(batch.status).toBe(200);
      expect(await batch.json()).toEqual({
        res: [{ id: 'before', trace_id: 'trace-d' }, {}, { id: 'after', trace_id: 'trace-d' }],
      });
      const calls = await fixture.store.calls.query({ entity: 'acme', project: 'deep' });
      expect(calls.map((call) => call.id).sort()).toEqual(['after', 'before']);
      expect(reported).toEqual([
        '/obj/create: The request body nests deeper than 1000 levels; flatten it.',
        '/call/upsert_batch (batch item 1 skipped): Batch item 1 nests deeper than 1000 levels; flatten it.',
      ]);
    } finally {
      await server.close();
    }
  });
});
