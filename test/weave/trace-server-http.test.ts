import net from 'node:net';
import * as weave from 'weave';
import type { CallRecord } from '../../lib/lineage';
import { startWeaveServer } from '../../lib/weave-server';
import { pointWeaveAt, startFixture, TEST_TOKEN, type WeaveServerFixture } from './support/weave-server-fixture';

const basic = (token: string) => `Basic ${Buffer.from(`api:${token}`).toString('base64')}`;

describe('weft serve over HTTP: auth, errors and the endpoints beyond the happy path', () => {
  let fixture: WeaveServerFixture;
  let restoreEnvironment = (): void => undefined;

  async function post(
    path: string,
    body: unknown,
    options: { authorization?: string | null; raw?: boolean } = {},
  ): Promise<{ status: number; body: unknown; text: string }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const authorization = options.authorization === undefined ? basic(TEST_TOKEN) : options.authorization;
    if (authorization !== null) headers.authorization = authorization;
    const response = await fetch(`${fixture.server.url}${path}`, {
      method: 'POST',
      headers,
      body: options.raw ? (body as string) : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text };
  }

  async function isHealthy(): Promise<boolean> {
    const response = await fetch(`${fixture.server.url}/health`, { headers: { authorization: basic(TEST_TOKEN) } });
    return response.status === 200 && ((await response.json()) as { status: string }).status === 'ok';
  }

  beforeAll(async () => {
    fixture = await startFixture();
    restoreEnvironment = pointWeaveAt(fixture.server.url);
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
  });

  afterAll(async () => {
    await fixture?.dispose();
    restoreEnvironment();
    jest.restoreAllMocks();
  });

  afterEach(async () => {
    // Whatever a test sent, the server is still there.
    expect(await isHealthy()).toBe(true);
  });

  it('refuses requests without the token, or with a wrong one, with a 401 JSON body', async () => {
    const missing = await post(
      '/obj/read',
      { project_id: 'acme/app', object_id: 'x', digest: 'latest' },
      { authorization: null },
    );
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({ detail: expect.stringContaining('WEFT_SERVE_TOKEN') });
    expect((await post('/health', {}, { authorization: basic('not-the-token') })).status).toBe(401);
    expect((await fetch(`${fixture.server.url}/health`)).status).toBe(401);
    // A bearer token works too, for clients other than the SDK.
    const bearer = await fetch(`${fixture.server.url}/server_info`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(bearer.status).toBe(200);
  });

  it('gives the SDK a 401 it reports when WANDB_API_KEY is not the token', async () => {
    process.env.WANDB_API_KEY = 'a-wrong-api-key';
    const client = await weave.init('acme/app');
    // Objects fail at the caller; nothing is written.
    await expect(client.publish({ some: 'value' }, 'refused')).rejects.toMatchObject({
      status: 401,
      error: { detail: expect.stringContaining('WEFT_SERVE_TOKEN') },
    });
    expect(await fixture.store.objects.list({ entity: 'acme', project: 'app' })).toEqual([]);
  });

  it('answers unknown routes with 404 and names the method to use', async () => {
    const unknown = await post('/calls/delete', { project_id: 'acme/app', call_ids: ['x'] });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ detail: expect.stringContaining('no endpoint POST /calls/delete') });
    const wrongMethod = await fetch(`${fixture.server.url}/obj/create`, {
      headers: { authorization: basic(TEST_TOKEN) },
    });
    expect(wrongMethod.status).toBe(404);
    expect(await wrongMethod.json()).toEqual({ detail: 'GET /obj/create is not allowed; use POST /obj/create.' });
  });

  it('answers malformed bodies with 400 and schema mismatches with a FastAPI-style 422', async () => {
    const notJson = await post('/obj/create', '{"obj": {', { raw: true });
    expect(notJson.status).toBe(400);
    expect(notJson.body).toEqual({ detail: expect.stringContaining('not valid JSON') });

    const missingField = await post('/obj/create', { obj: { project_id: 'acme/app', val: { a: 1 } } });
    expect(missingField.status).toBe(422);
    expect(missingField.body).toMatchObject({
      detail: [{ loc: ['body', 'obj', 'object_id'], msg: expect.any(String), type: expect.any(String) }],
    });

    const badProject = await post('/obj/create', { obj: { project_id: 'no-entity-here', object_id: 'x', val: 1 } });
    expect(badProject.status).toBe(400);
    expect(badProject.body).toEqual({ detail: expect.stringContaining('must be "<entity>/<project>"') });

    const badName = await post('/obj/create', { obj: { project_id: 'acme/app', object_id: '../escape', val: 1 } });
    expect(badName.status).toBe(400);
    expect(badName.body).toEqual({ detail: expect.stringContaining('contains ".."') });

    const missingObject = await post('/obj/read', {
      project_id: 'acme/app',
      object_id: 'never-published',
      digest: 'latest',
    });
    expect(missingObject.status).toBe(404);
    // The SDK surfaces it to the caller as the response, status and parsed body included.
    process.env.WANDB_API_KEY = TEST_TOKEN;
    await weave.init('acme/app');
    await expect(new weave.ObjectRef('acme/app', 'never-published', 'latest').get()).rejects.toMatchObject({
      status: 404,
      error: { detail: expect.stringContaining('does not exist') },
    });
  });

  it('answers an oversized body with 413 and garbage HTTP with 400, and keeps serving', async () => {
    const store = fixture.store;
    const small = await startWeaveServer({ store, token: TEST_TOKEN, port: 0, maxBodyBytes: 1024 });
    try {
      const response = await fetch(`${small.url}/obj/create`, {
        method: 'POST',
        headers: { authorization: basic(TEST_TOKEN), 'content-type': 'application/json' },
        body: JSON.stringify({ obj: { project_id: 'acme/app', object_id: 'big', val: 'x'.repeat(5000) } }),
      });
      expect(response.status).toBe(413);
      expect(await response.json()).toEqual({ detail: expect.stringContaining('the limit is 1024') });
    } finally {
      await small.close();
    }
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(fixture.server.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString('utf8')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
  });

  it('settles a request whose client goes away mid-body instead of waiting for the rest', async () => {
    let reportFailure: (message: string) => void = () => undefined;
    const reported = new Promise<string>((resolve) => (reportFailure = resolve));
    const server = await startWeaveServer({
      store: fixture.store,
      token: TEST_TOKEN,
      port: 0,
      onError: (error) => reportFailure(error.message),
    });
    try {
      const socket = net.connect(server.port, '127.0.0.1', () => {
        socket.write(
          `POST /obj/create HTTP/1.1\r\nhost: x\r\nauthorization: ${basic(TEST_TOKEN)}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"obj": {`,
        );
        setImmediate(() => socket.destroy());
      });
      expect(await reported).toBe('The client closed the connection before the body ended.');
    } finally {
      await server.close();
    }
  });

  it('keeps an end that arrives before its start and applies it when the start comes', async () => {
    const end = {
      project_id: 'acme/app',
      id: 'call-late-start',
      ended_at: '2026-01-01T00:00:02.000Z',
      output: 42,
      summary: {},
    };
    expect((await post('/call/end', { end })).status).toBe(200);
    const start = {
      project_id: 'acme/app',
      id: 'call-late-start',
      op_name: 'weave:///acme/app/op/answer:abc',
      trace_id: 'trace-1',
      started_at: '2026-01-01T00:00:01.000Z',
      attributes: {},
      inputs: { question: 'why?' },
    };
    expect((await post('/call/start', { start })).body).toEqual({ id: 'call-late-start', trace_id: 'trace-1' });
    const read = await post('/call/read', { project_id: 'acme/app', id: 'call-late-start' });
    expect(read.body).toMatchObject({
      call: { output: 42, ended_at: '2026-01-01T00:00:02.000Z', inputs: { question: 'why?' } },
    });
  });

  it('streams calls filtered by a query expression, sorted and limited, and renames a call', async () => {
    const batch = ['first', 'second', 'third'].map((name, index) => ({
      mode: 'start',
      req: {
        start: {
          project_id: 'acme/query',
          id: `call-${name}`,
          op_name: `weave:///acme/query/op/${index === 1 ? 'other' : 'step'}:d1`,
          trace_id: 'trace-q',
          started_at: `2026-01-01T00:00:0${index}.000Z`,
          attributes: { weave: { source: 'js-sdk' }, rank: index },
          inputs: {},
        },
      },
    }));
    expect((await post('/call/upsert_batch', { batch })).body).toEqual({
      res: batch.map((item) => ({ id: item.req.start.id, trace_id: 'trace-q' })),
    });
    const streamed = await post('/calls/stream_query', {
      project_id: 'acme/query',
      filter: { op_names: ['weave:///acme/query/op/step:*'] },
      query: { $expr: { $gte: [{ $getField: 'attributes.rank' }, { $literal: 0 }] } },
      sort_by: [{ field: 'started_at', direction: 'desc' }],
      limit: 1,
    });
    const lines = streamed.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string });
    expect(lines.map((line) => line.id)).toEqual(['call-third']);
    expect((await post('/calls/query_stats', { project_id: 'acme/query' })).body).toEqual({ count: 3 });

    expect(
      (await post('/call/update', { project_id: 'acme/query', call_id: 'call-first', display_name: 'renamed' })).status,
    ).toBe(200);
    const [renamed] = await fixture.store.calls.query({ entity: 'acme', project: 'query', limit: 1 });
    expect(renamed).toMatchObject<Partial<CallRecord>>({ id: 'call-first', displayName: 'renamed' });

    const badQuery = await post('/calls/stream_query', { project_id: 'acme/query', query: { $expr: { $regex: [] } } });
    expect(badQuery.status).toBe(422);
    expect(badQuery.body).toMatchObject({ detail: [{ msg: expect.stringContaining('"$regex" is not supported') }] });
  });

  it('stores images the SDK uploads as files, feedback the SDK adds, and reads refs back', async () => {
    process.env.WANDB_API_KEY = TEST_TOKEN;
    const client = await weave.init('acme/media');
    const pixels = Buffer.from('not really a png, but bytes all the same');
    const describeImage = weave.op(async function describeImage(image: unknown) {
      return image === undefined ? 'nothing' : 'an image';
    });
    await describeImage(weave.weaveImage({ data: pixels, imageType: 'png' }));
    await client.waitForBatchProcessing();
    const [call] = await fixture.store.calls.query({ entity: 'acme', project: 'media' });
    const image = call!.inputs.arg0 as { _type: string; files: Record<string, string> };
    expect(image._type).toBe('CustomWeaveType');
    const content = await fetch(`${fixture.server.url}/file/content`, {
      method: 'POST',
      headers: { authorization: basic(TEST_TOKEN), 'content-type': 'application/json' },
      body: JSON.stringify({ project_id: 'acme/media', digest: image.files['image.png'] }),
    });
    expect(Buffer.from(await content.arrayBuffer())).toEqual(pixels);

    const feedbackId = await client.addScore(call!.id, call!.id, 'weave:///acme/media/op/judge:abc', { correct: true });
    const feedback = await post('/feedback/query', {
      project_id: 'acme/media',
      query: { $expr: { $eq: [{ $getField: 'weave_ref' }, { $literal: `weave:///acme/media/call/${call!.id}` }] } },
    });
    expect(feedback.body).toMatchObject({
      result: [{ id: feedbackId, feedback_type: 'wandb.runnable.judge', payload: { output: { correct: true } } }],
    });

    const refs = await post('/refs/read_batch', { refs: [call!.opName, `weave:///acme/media/call/${call!.id}`] });
    expect(refs.body).toMatchObject({
      vals: [{ _type: 'CustomWeaveType', weave_type: { type: 'Op' } }, { id: call!.id }],
    });
  });

  it('skips and reports a call the store cannot take instead of failing the batch the SDK would resend forever', async () => {
    const reported: string[] = [];
    const server = await startWeaveServer({
      store: fixture.store,
      token: TEST_TOKEN,
      port: 0,
      onError: (error, request) => reported.push(`${request.path}: ${error.message}`),
    });
    try {
      const start = (id: string) => ({
        mode: 'start',
        req: {
          start: {
            project_id: 'acme/batch',
            id,
            op_name: 'weave:///acme/batch/op/step:d1',
            trace_id: 'trace-b',
            started_at: '2026-01-01T00:00:00.000Z',
            attributes: { tags: ['a', 'b'], owner: null, weave: { source: 'js-sdk' } },
            inputs: {},
          },
        },
      });
      const response = await fetch(`${server.url}/call/upsert_batch`, {
        method: 'POST',
        headers: { authorization: basic(TEST_TOKEN), 'content-type': 'application/json' },
        body: JSON.stringify({ batch: [start('good-call'), start('bad call id')] }),
      });
      expect(response.status).toBe(200);
      const calls = await fixture.store.calls.query({ entity: 'acme', project: 'batch' });
      expect(calls.map((call) => call.id)).toEqual(['good-call']);
      // Lists and nulls in attributes are kept as their JSON text.
      expect(calls[0]!.attributes).toEqual({ tags: '["a","b"]', owner: 'null', weave: { source: 'js-sdk' } });
      expect(reported).toEqual([
        expect.stringMatching(/start of call bad call id skipped.*call id "bad call id" is not allowed/),
      ]);
    } finally {
      await server.close();
    }
  });
});
