import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { openLineageStore, type LineageStore } from '../../lib/lineage';
import { startWeaveServer, type RunningWeaveServer } from '../../lib/weave-server';
import { runWeft } from '../support/cli';
import { createTestLocation, type TestLocation } from '../lineage/support/test-backends';
import { buildUiFixture, hostileText, type UiFixture } from './support/ui-fixture';

/**
 * The web UI in a real browser (Debian's chromium driven by playwright-core): after a demo-sized lifecycle written by
 * the pipeline's activities, each page shows the numbers the store holds — checked against the CLI's --json —, links
 * navigate, login is required, unknown refs get a 404 naming them, hostile input stays text, no console errors.
 */
const token = 'weft-ui-test-token-0123456789';
const chromiumPath = process.env.WEFT_CHROMIUM ?? '/usr/bin/chromium';
const screenshots = path.resolve(__dirname, '..', '..', 'test-output', 'ui-screenshots');

interface CompareJson {
  scorers: { name: string; a: number; b: number; delta: number }[];
}

describe('weft serve web UI in chromium', () => {
  let location: TestLocation;
  let store: LineageStore;
  let server: RunningWeaveServer;
  let fixture: UiFixture;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];

  const weftJson = async <T>(args: string[]): Promise<T> => {
    const result = await runWeft([...args, '--json'], { WEFT_HOME: location.folder, WEFT_LINEAGE_URL: location.url });
    if (result.code !== 0) throw new Error(`weft ${args.join(' ')} failed: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  };
  /** An element's text with runs of whitespace as one space (the HTML is formatted across lines). */
  const text = async (selector: string) => ((await page.textContent(selector)) ?? '').replace(/\s+/g, ' ').trim();
  const shot = (name: string) => page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: false });
  const logIn = async () => {
    await page.goto(`${server.url}/ui/login`);
    await page.fill('input[name=token]', token);
    await Promise.all([page.waitForURL(/\/ui\/registries$/), page.click('button[type=submit]')]);
  };

  beforeAll(async () => {
    if (!fs.existsSync(chromiumPath)) {
      throw new Error(
        `No chromium at ${chromiumPath}: install Debian's chromium (scripts/setup.sh does, as root) or set WEFT_CHROMIUM.`,
      );
    }
    location = await createTestLocation('sqlite');
    store = await openLineageStore(location.url, { blobDirectory: location.blobDirectory });
    fixture = await buildUiFixture(store, location.folder);
    server = await startWeaveServer({
      store,
      token,
      port: 0,
      ui: { temporalUiUrl: 'http://127.0.0.1:8233', temporalNamespace: 'default' },
    });
    fs.mkdirSync(screenshots, { recursive: true });
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await store?.close();
    await location?.dispose();
  });

  it('requires a login: pages redirect to the form, a wrong token is refused, the right one sets an HttpOnly cookie', async () => {
    const response = await page.goto(`${server.url}/ui/evaluations?app=${fixture.app}`);
    expect(response!.status()).toBe(200);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    await page.fill('input[name=token]', 'not-the-token');
    await page.click('button[type=submit]');
    await expect(text('.error')).resolves.toContain('not the token');
    expect(await context.cookies()).toEqual([]);
    await page.fill('input[name=token]', token);
    await Promise.all([page.waitForURL(/\/ui\/evaluations\?app=ui-demo$/), page.click('button[type=submit]')]);
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'weft_session', httpOnly: true, sameSite: 'Strict' });
    // The API keeps its token auth: a UI cookie is not an API credential, the bearer token still is.
    const api = await fetch(`${server.url}/calls/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: `${cookie!.name}=${cookie!.value}` },
      body: JSON.stringify({ project_id: 'weft/rag-demo' }),
    });
    expect(api.status).toBe(401);
    const withToken = await fetch(`${server.url}/ui/registries`, { headers: { authorization: `Bearer ${token}` } });
    expect(withToken.status).toBe(200);
  });

  it('registries → collection: versions, aliases and alias moves as `weft registry show --json` has them', async () => {
    await logIn();
    const registries = await weftJson<{ name: string }[]>(['registry', 'ls']);
    expect(
      await page.$$eval('#registries tbody tr td:first-child', (cells) => cells.map((cell) => cell.textContent)),
    ).toEqual(registries.map((registry) => registry.name));
    await Promise.all([
      page.waitForURL(/\/ui\/registries\/RAG%20Models$/),
      page.click('#registries a:text-is("RAG Models")'),
    ]);
    const shown = await weftJson<{ collections: { name: string; aliases: string[] }[] }>([
      'registry',
      'show',
      'RAG Models',
    ]);
    const collectionName = shown.collections[0]!.name;
    await Promise.all([
      page.waitForURL(/\/ui\/registries\/RAG%20Models\/.+$/),
      page.click(`#collections >> text=${collectionName}`),
    ]);
    const collection = await weftJson<{
      versions: { version: number; aliases: string[] }[];
      aliasHistory: {
        alias: string;
        fromVersion: number | null;
        toVersion: number | null;
        workflowId: string | null;
      }[];
    }>(['registry', 'show', `RAG Models/${collectionName}`]);
    const versionRows = await page.$$eval('#versions tbody tr', (rows) =>
      rows.map((row) => ({
        version: row.getAttribute('data-version'),
        aliases: Array.from(row.querySelectorAll('.alias')).map(
          (alias) => (alias as { textContent: string | null }).textContent,
        ),
      })),
    );
    expect(versionRows).toEqual(
      collection.versions.map((version) => ({ version: `v${version.version}`, aliases: version.aliases })),
    );
    const moves = await page.$$eval('#alias-moves tbody tr', (rows) =>
      rows.map((row) =>
        Array.from((row as unknown as { cells: ArrayLike<{ textContent: string | null }> }).cells)
          .slice(0, 5)
          .map((cell) => cell.textContent!.trim()),
      ),
    );
    expect(moves).toEqual(
      collection.aliasHistory.map((move) => [
        move.alias,
        move.fromVersion === null ? '—' : `v${move.fromVersion}`,
        move.toVersion === null ? '—' : `v${move.toVersion}`,
        expect.any(String),
        move.workflowId ?? '—',
      ]),
    );
    // Workflow ids link to the Temporal UI.
    const href = await page.getAttribute('#alias-moves a.external', 'href');
    expect(href).toMatch(/^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/lifecycle%2Fui-demo%2F/);
    await shot('registry-collection');
    // With WEFT_SERVE_URL set, the CLI prints this page's URL, and it opens this page.
    const printed = await runWeft(['registry', 'show', `RAG Models/${collectionName}`], {
      WEFT_HOME: location.folder,
      WEFT_LINEAGE_URL: location.url,
      WEFT_SERVE_URL: server.url,
    });
    const link = /^Web UI: (\S+)$/m.exec(printed.stdout)?.[1];
    expect(link).toBe(`${server.url}/ui/registries/RAG%20Models/${encodeURIComponent(collectionName)}`);
    const opened = page.url();
    await page.goto(link!);
    expect(page.url()).toBe(opened);
  });

  it('evaluations → compare: summary, paired difference, gate and per-row table match the store and the CLI', async () => {
    await page.goto(`${server.url}/ui/evaluations?app=${fixture.app}`);
    expect(
      await page.$$eval('#evaluations tbody tr', (rows) => rows.map((row) => row.getAttribute('data-ref'))),
    ).toEqual(expect.arrayContaining(fixture.results.map((result) => result.evaluationResultRef)));
    await Promise.all([page.waitForURL(/\/ui\/evaluations\/compare\?/), page.click('a.compare-run')]);
    const [challenger, champion] = fixture.results;
    // Champion first (the baseline A), challenger B: B − A is the gate's challenger − champion.
    const compared = await weftJson<CompareJson>([
      'evals',
      'compare',
      champion!.evaluationResultRef,
      challenger!.evaluationResultRef,
    ]);
    for (const scorer of compared.scorers) {
      const means = await page.$$eval(`#summary tr[data-scorer="${scorer.name}"] td[data-result]`, (cells) =>
        cells.map((cell) => Number(cell.getAttribute('data-mean'))),
      );
      expect(means).toEqual([scorer.a, scorer.b]);
      const shownText = await text(`#summary tr[data-scorer="${scorer.name}"] td[data-result="1"]`);
      expect(shownText).toContain(scorer.b.toFixed(3));
    }
    const stored = (await store.objects.get(challenger!.evaluationResultRef)).value as {
      summary: Record<string, { ciLow: number; ciHigh: number }>;
    };
    await expect(text('#summary tr[data-scorer="f1"] td[data-result="1"] .ci')).resolves.toBe(
      `[${stored.summary.f1!.ciLow.toFixed(3)}, ${stored.summary.f1!.ciHigh.toFixed(3)}]`,
    );
    // The paired difference and the gate are the pipeline's own (same function, seed and policy).
    const difference = (await page.textContent('#summary tr[data-scorer="f1"] td[data-difference="1"]'))!
      .replace(/\s+/g, ' ')
      .trim();
    const signed = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(3)}`;
    expect(difference).toContain(
      `${signed(fixture.gate.difference!)} [${signed(fixture.gate.ciLow!)}, ${signed(fixture.gate.ciHigh!)}]`,
    );
    await expect(text('#gates .badge')).resolves.toBe(fixture.gate.decision);
    await expect(text('#gates li')).resolves.toContain(fixture.gate.reason);
    await expect(text('#row-count')).resolves.toContain(`${fixture.rowCount} of ${fixture.rowCount} rows`);
    expect(await page.$$eval('svg rect.bar', (bars) => bars.length)).toBeGreaterThan(0);
    await shot('evaluation-compare');

    // Regressions only: the rows whose f1 dropped, as the stored per-row scores say.
    const rowsOf = async (ref: string) =>
      ((await store.objects.get(ref)).value as { rows: { rowIndex: number; scores: Record<string, number> }[] }).rows;
    const championRows = new Map(
      (await rowsOf(champion!.evaluationResultRef)).map((row) => [row.rowIndex, row.scores.f1!]),
    );
    const regressed = (await rowsOf(challenger!.evaluationResultRef))
      .filter((row) => row.scores.f1! < championRows.get(row.rowIndex)!)
      .map((row) => String(row.rowIndex));
    expect(regressed.length).toBeGreaterThan(0);
    await page.selectOption('select[name=only]', 'regressions');
    await Promise.all([page.waitForURL(/only=regressions/), page.click('#row-controls button[type=submit]')]);
    expect(await page.$$eval('#rows tbody tr', (rows) => rows.map((row) => row.getAttribute('data-row')))).toEqual(
      regressed,
    );
    // The stored hostile question is shown as text and never runs.
    await page.selectOption('select[name=only]', 'all');
    await Promise.all([page.waitForURL(/only=all/), page.click('#row-controls button[type=submit]')]);
    await expect(text('#rows tr[data-row="3"] td:nth-child(2)')).resolves.toContain(hostileText);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
    // The client script filters the page's rows as one types.
    await page.fill('#row-filter', 'fact #1');
    const visible = await page.$$eval('#rows tbody tr', (rows) => rows.filter((row) => !row.hidden).length);
    expect(visible).toBe(
      Array.from({ length: fixture.rowCount }, (_, index) => `What is fact #${index}?`).filter((text) =>
        text.includes('fact #1'),
      ).length,
    );
  });

  it('lineage: the graph upstream and downstream of the challenger RagModel is `weft lineage --json`, nodes clickable', async () => {
    await page.goto(`${server.url}/ui/lineage?ref=${encodeURIComponent(fixture.challengerRef)}`);
    const graph = await weftJson<{ root: string; nodes: { id: string }[]; edges: unknown[] }>([
      'lineage',
      fixture.challengerRef,
      '--depth',
      '12',
    ]);
    expect(await text('#lineage-root')).toBe(graph.root);
    const nodes = await page.$$eval('svg.lineage a.node', (links) =>
      links.map((link) => link.getAttribute('data-node')),
    );
    expect(new Set(nodes)).toEqual(new Set(graph.nodes.map((node) => node.id)));
    expect(await page.$$eval('#edges tbody tr', (rows) => rows.length)).toBe(graph.edges.length);
    // dataset → fine-tune run → chat model artifact → ChatModel → RagModel → EvaluationResult, reference artifact, registry.
    expect(nodes).toEqual(
      expect.arrayContaining([fixture.baseModelRef, fixture.chatArtifactRef, fixture.results[0]!.evaluationResultRef]),
    );
    expect(nodes.some((id) => id?.startsWith('run:'))).toBe(true);
    expect(nodes.some((id) => id?.includes('wandb-registry-RAG Models/'))).toBe(true);
    // Wide enough for the whole graph (upstream to registry link) in the README's screenshot.
    await page.setViewportSize({ width: 1800, height: 760 });
    await shot('lineage');
    await page.setViewportSize({ width: 1280, height: 860 });
    await Promise.all([
      page.waitForURL((target) => target.searchParams.get('ref') === fixture.chatArtifactRef),
      page.click(`svg.lineage a.node[data-node="${fixture.chatArtifactRef}"]`),
    ]);
    expect(await text('#lineage-root')).toBe(fixture.chatArtifactRef);
  });

  it('traces: filtered by wandb-run-id, then one call tree with every call `weft calls ls --trace` lists', async () => {
    await page.goto(`${server.url}/ui/traces?wandb-run-id=${encodeURIComponent(fixture.wandbRunId)}`);
    const roots = await page.$$eval('#calls tbody tr', (rows) => rows.map((row) => row.getAttribute('data-call')));
    expect(roots).toHaveLength(2); // one Evaluation.evaluate per model
    await Promise.all([
      page.waitForURL(/\/ui\/traces\/[^/?]+$/),
      page.click('#calls tbody tr:first-child td:nth-child(4) a'),
    ]);
    const traceId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    const calls = await weftJson<{ id: string }[]>(['calls', 'ls', '--trace', traceId, '--limit', '10000']);
    const shown = await page.$$eval('#trace-tree tbody tr', (rows) => rows.map((row) => row.getAttribute('data-call')));
    expect(new Set(shown)).toEqual(new Set(calls.map((call) => call.id)));
    // evaluate → predict_and_score → predict + 4 scorers per row.
    expect(calls).toHaveLength(1 + fixture.rowCount * (1 + 1 + 4));
    await shot('trace');
  });

  it('an unknown ref is a 404 page naming it; hostile query strings come back as text', async () => {
    const missing = 'weave:///weft/rag-demo/object/RagModel:doesnotexist0000';
    const response = await page.goto(`${server.url}/ui/lineage?ref=${encodeURIComponent(missing)}`);
    expect(response!.status()).toBe(404);
    await expect(text('#error-message')).resolves.toContain(missing);
    const compareMissing = await page.goto(
      `${server.url}/ui/evaluations/compare?ids=${encodeURIComponent(missing)}&ids=${encodeURIComponent(fixture.results[0]!.evaluationResultRef)}`,
    );
    expect(compareMissing!.status()).toBe(404);
    const unknownCollection = await page.goto(`${server.url}/ui/registries/RAG%20Models/no-such-app`);
    expect(unknownCollection!.status()).toBe(404);
    await expect(text('main')).resolves.toContain('no-such-app');

    for (const target of [
      `/ui/lineage?ref=${encodeURIComponent(hostileText)}`,
      `/ui/traces?op=${encodeURIComponent(hostileText)}&wandb-run-id=${encodeURIComponent('"><svg onload=window.__xss=3>')}`,
      `/ui/evaluations/compare?ids=${encodeURIComponent(fixture.results[0]!.evaluationResultRef)}&ids=${encodeURIComponent(
        fixture.results[1]!.evaluationResultRef,
      )}&q=${encodeURIComponent(hostileText)}`,
      `/ui/registries/${encodeURIComponent(hostileText)}`,
    ]) {
      const hostile = await page.goto(`${server.url}${target}`);
      expect(hostile!.status()).toBeLessThan(500);
      await expect(page.content()).resolves.not.toContain('<script>window.__xss');
      expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
    }
    await expect(text('main')).resolves.toContain(hostileText);
  });

  it('logging out ends the session, and no page logged a console error', async () => {
    await page.goto(`${server.url}/ui/pipelines`);
    await expect(text('#pipelines-problem')).resolves.toContain('No Temporal connection');
    await Promise.all([page.waitForURL(/\/ui\/login$/), page.click('nav .logout button')]);
    await page.goto(`${server.url}/ui/registries`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    // 404 responses log "Failed to load resource" by design; anything else (a CSP violation, a script error) fails.
    expect(
      consoleErrors.filter(
        (line) => !/Failed to load resource: the server responded with a status of 40[0-4]/.test(line),
      ),
    ).toEqual([]);
  });
});
