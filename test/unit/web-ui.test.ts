import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openLineageStore, type LineageStore } from '../../lib/lineage';
import { startWeaveServer, type RunningWeaveServer } from '../../lib/weave-server';
import { appOfWorkflow } from '../../lib/weave-server/ui/evaluation-data';
import { escapeHtml, html } from '../../lib/weave-server/ui/html';
import { safeNext, SessionKeys, sessionLifetimeMilliseconds } from '../../lib/weave-server/ui/session';
import { uiLinks } from '../../lib/weave-server/ui/ui-links';

describe('web UI building blocks', () => {
  it('escapes every interpolated value, and only Html built by the template passes through', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p>${inner}${['<s>', html`<u></u>`]}${null}${undefined}${false}${0}</p>`.text).toBe(
      '<p><b>&lt;i&gt;</b>&lt;s&gt;<u></u>0</p>',
    );
  });

  it('signs sessions: a tampered, expired or foreign cookie is refused', () => {
    const keys = new SessionKeys(Buffer.from('token-one-0123456789'));
    const now = Date.parse('2026-01-01T00:00:00Z');
    const cookie = keys.issue(now);
    expect(keys.verify(cookie, now + 1000)).toBe(true);
    expect(keys.verify(cookie, now + sessionLifetimeMilliseconds + 1)).toBe(false);
    const [expires, nonce, signature] = cookie.split('.');
    expect(keys.verify(`${Number(expires) + 10 ** 9}.${nonce}.${signature}`, now)).toBe(false);
    expect(new SessionKeys(Buffer.from('token-two-0123456789')).verify(cookie, now)).toBe(false);
    expect(keys.verify(undefined)).toBe(false);
    expect(keys.verify('garbage')).toBe(false);
    expect(keys.tokenMatches('token-one-0123456789')).toBe(true);
    expect(keys.tokenMatches('token-one-012345678')).toBe(false);
  });

  it('redirects after login only to a path on this server', () => {
    expect(safeNext('/ui/evaluations?app=a')).toBe('/ui/evaluations?app=a');
    for (const hostile of [
      '//evil.example/',
      'https://evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
      '',
      null,
    ]) {
      expect(safeNext(hostile)).toBe('/ui/registries');
    }
  });

  it('finds the app of a result from the workflow that wrote it', () => {
    expect(appOfWorkflow('lifecycle/climate-rag/wandb-artifact_weft_rag-demo_base:v0/0123456789abcdef/evaluate')).toBe(
      'climate-rag',
    );
    expect(appOfWorkflow('reevaluate/climate-rag-2026-01-02T02:00:00Z/evaluate')).toBe('climate-rag');
    expect(appOfWorkflow('reevaluate/climate-rag/evaluate')).toBe('climate-rag');
    expect(appOfWorkflow('evaluate-1234')).toBeUndefined();
    expect(appOfWorkflow(undefined)).toBeUndefined();
  });

  it('builds stable links when WEFT_SERVE_URL is set, none otherwise', () => {
    expect(uiLinks(undefined)).toBeUndefined();
    const links = uiLinks('http://127.0.0.1:6345/')!;
    expect(links.lineage('weave:///e/p/object/RagModel:abc')).toBe(
      'http://127.0.0.1:6345/ui/lineage?ref=weave%3A%2F%2F%2Fe%2Fp%2Fobject%2FRagModel%3Aabc',
    );
    expect(links.compare(['a', 'b'])).toBe('http://127.0.0.1:6345/ui/evaluations/compare?ids=a&ids=b');
    expect(links.collection('RAG Models', 'climate-rag')).toBe(
      'http://127.0.0.1:6345/ui/registries/RAG%20Models/climate-rag',
    );
  });
});

describe('pipelines page', () => {
  it('lists runs with their search attributes and marks the nightly runs Temporal flagged as regressions', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-ui-pipelines-'));
    const store = await openLineageStore(`sqlite://${path.join(folder, 'lineage.db')}`);
    const nightly = (day: string, f1: number) =>
      store.objects.publish({
        name: 'EvaluationResult',
        value: {
          _type: 'EvaluationResult',
          rows: [],
          summary: { f1: { mean: f1, ciLow: f1, ciHigh: f1, count: 1 } },
          workflow_id: `reevaluate/climate-rag-${day}T02:00:00Z/evaluate`,
        },
      });
    await nightly('2026-01-01', 0.41);
    await nightly('2026-01-02', 0.2);
    const run = (day: string, regression: boolean) => ({
      workflowId: `reevaluate/climate-rag-${day}T02:00:00Z`,
      runId: `run-${day}`,
      workflowType: 'reevaluateWorkflow',
      status: 'COMPLETED',
      startTime: `${day}T02:00:00.000Z`,
      closeTime: `${day}T02:05:00.000Z`,
      stage: 'done',
      app: 'climate-rag',
      gateDecision: null,
      score: regression ? 0.2 : 0.41,
      regression,
    });
    // A fake visibility source (Temporal is not started here): what the page does with the runs it is given.
    const pipelines = {
      description: 'fake visibility',
      list: async () => [run('2026-01-02', true), run('2026-01-01', false)],
      close: async () => undefined,
    };
    const server = await startWeaveServer({ store, token: 'pipelines-token-0123', port: 0, ui: { pipelines } });
    try {
      const response = await fetch(`${server.url}/ui/pipelines`, {
        headers: { authorization: 'Bearer pipelines-token-0123' },
      });
      expect(response.status).toBe(200);
      const page = await response.text();
      expect(page).toContain('data-workflow="reevaluate/climate-rag-2026-01-02T02:00:00Z"');
      expect(page.match(/<circle\s+class="point"/g)).toHaveLength(1);
      expect(page.match(/<rect\s+class="point regression"/g)).toHaveLength(1);
      expect(page).toContain('f1 0.200 — regression');
    } finally {
      await server.close();
      await store.close();
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('web UI over HTTP', () => {
  const token = 'weft-ui-unit-token-0123456789';
  let folder: string;
  let store: LineageStore;
  let server: RunningWeaveServer;

  beforeAll(async () => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-ui-'));
    store = await openLineageStore(`sqlite://${path.join(folder, 'lineage.db')}`);
    server = await startWeaveServer({ store, token, port: 0 });
  });
  afterAll(async () => {
    await server.close();
    await store.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  const get = (urlPath: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${urlPath}`, { headers, redirect: 'manual' });

  it('sends a browser without a session to the login form, keeping where it was going', async () => {
    const response = await get('/ui/traces?op=x');
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe(`/ui/login?next=${encodeURIComponent('/ui/traces?op=x')}`);
    expect((await get('/')).headers.get('location')).toMatch(/^\/ui\/login/);
    const login = await get('/ui/login');
    expect(login.status).toBe(200);
    expect(login.headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  it('logs in with the token only; the cookie then opens pages and a forged one does not', async () => {
    const post = (body: string) =>
      fetch(`${server.url}/ui/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
        redirect: 'manual',
      });
    const wrong = await post('token=wrong&next=%2Fui%2Ftraces');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const right = await post(`token=${token}&next=${encodeURIComponent('//evil.example/')}`);
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('/ui/registries');
    const cookie = right.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^weft_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    const session = cookie.split(';')[0]!;
    expect((await get('/ui/registries', { cookie: session })).status).toBe(200);
    const forged = session.replace(/.$/, (last) => (last === 'A' ? 'B' : 'A'));
    expect((await get('/ui/registries', { cookie: forged })).status).toBe(303);
    // Unknown pages and refs are HTML 404s naming what was asked for.
    const missing = await get('/ui/lineage?ref=wandb-artifact%3A%2F%2F%2Fweft%2Frag-demo%2Fghost%3Av9', {
      cookie: session,
    });
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('wandb-artifact:///weft/rag-demo/ghost:v9');
    expect((await get('/ui/nothing-here', { cookie: session })).status).toBe(404);
    // The API is untouched: no token, 401 JSON.
    const api = await fetch(`${server.url}/calls/query`, { method: 'POST', body: '{}', headers: { cookie: session } });
    expect(api.status).toBe(401);
    expect(await api.json()).toEqual({ detail: expect.stringContaining('token') });
  });

  it('pages calls newest first, roots only when asked, with an offset', async () => {
    const call = (id: string, second: number, parentId?: string) => ({
      id,
      traceId: 't1',
      parentId,
      opName: 'op',
      startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString(),
    });
    await store.calls.upsertMany([call('a', 1), call('b', 2, 'a'), call('c', 3), call('d', 4, 'c')]);
    const ids = async (query: Parameters<LineageStore['calls']['query']>[0]) =>
      (await store.calls.query(query)).map((found) => found.id);
    expect(await ids({})).toEqual(['a', 'b', 'c', 'd']);
    expect(await ids({ order: 'newest' })).toEqual(['d', 'c', 'b', 'a']);
    expect(await ids({ rootsOnly: true, order: 'newest' })).toEqual(['c', 'a']);
    expect(await ids({ order: 'newest', limit: 2, offset: 1 })).toEqual(['c', 'b']);
    await expect(store.calls.query({ offset: -1 })).rejects.toThrow(/offset/);
  });
});
