/**
 * The web UI at scale: the evaluation compare page over two 10,000-row EvaluationResults and the traces page over
 * 100,000 calls. Reports the server time per request (cold, then the median of warm repeats) beside a baseline run in
 * the same process — the same records read as JSON (`weft evals compare`'s reads; the `/calls/query` API) — and the
 * first render in chromium (first contentful paint, DOMContentLoaded). Records are written by the pipeline's activities
 * (plan, summarize) and its call builders (rows in bulk).
 *
 *   npx tsx bench/web-ui.ts [--rows 10000] [--calls 100000] [--repeats 5] [--store <folder>]
 *   (--store keeps the written records in <folder> and reuses them on the next run)
 *   WEFT_CHROMIUM=/usr/bin/chromium (default) for the browser part.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { chromium } from 'playwright-core';
import { createEvaluationActivities } from '../activities/evaluation';
import { callContext, parseRows, rowCalls, scorerOpName, type RagPrediction } from '../lib/evaluation';
import { openLineageStore, type CallInput, type LineageStore } from '../lib/lineage';
import { AppCatalogue } from '../lib/rag/app-catalogue';
import { scoredRowOf, scorerNamed } from '../lib/scoring/scorers';
import { startWeaveServer } from '../lib/weave-server';

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

const token = 'bench-token-0123456789';

async function writeEvaluation(store: LineageStore, rowCount: number): Promise<string[]> {
  const environment = new MockActivityEnvironment();
  const run = <Input, Output>(activity: (input: Input) => Promise<Output>, input: Input): Promise<Output> =>
    environment.run(activity, input) as Promise<Output>;
  const catalogue = new AppCatalogue(store);
  const base = await store.artifacts.log({ name: 'bench-chat', type: 'model', files: [{ path: 'm', content: 'w' }] });
  const embedding = await store.artifacts.log({
    name: 'bench-embed',
    type: 'model',
    files: [{ path: 'm', content: 'e' }],
  });
  const prompt = await catalogue.publishPrompt();
  const models = [];
  for (const temperature of [0, 0.000001]) {
    const chat = await catalogue.publishChatModel({ modelArtifactRef: base.ref, generation: { temperature } });
    models.push(
      await catalogue.publishRagModel({
        chatModel: chat.ref,
        embeddingModel: embedding.ref,
        collectionAlias: 'docs',
        prompt: prompt.ref,
      }),
    );
  }
  const rows = Array.from({ length: rowCount }, (_, index) => ({
    id: `q${index}`,
    question: `What does passage ${index} of the bench corpus say about topic ${index % 97}?`,
    answer: `answer number ${index}`,
    doc_id: `doc-${index}`,
  }));
  const dataset = await store.datasets.publish({ name: 'bench-qa', rows });
  const evaluation = await catalogue.publishEvaluation({
    dataset: dataset.ref,
    scorers: ['exact_match', 'f1', 'hit@5', 'mrr'],
  });
  // The pipeline's own activities plan and summarize; the rows' calls are built by its builders and written in bulk.
  const activities = createEvaluationActivities({
    store,
    rag: { predict: async () => [], cacheIdentity: async () => ({ key: 'bench', sampled: false }) },
  });
  const runId = 'lifecycle/bench/base/0000000000000000/evaluate';
  const plan = await run(activities.pipeline.planEvaluation, {
    evaluationRef: evaluation.ref,
    ragModelRefs: models.map((model) => model.ref),
    batchSize: 1024,
    evaluationRunId: runId,
  });
  const parsed = parseRows(rows, dataset.ref, 0);
  const scorers = plan.scorers.map(scorerNamed);
  for (const modelIndex of plan.models.keys()) {
    let batch: CallInput[] = [];
    for (const [rowIndex, row] of parsed.entries()) {
      const correct = (rowIndex * (modelIndex + 3)) % 10 < 6 + modelIndex;
      const prediction: RagPrediction = {
        answer: correct ? row.answer : `something else ${rowIndex}`,
        contexts: [{ documentId: correct ? row.doc_id : 'doc-x', text: 'passage', score: 0.8 }],
        promptTokens: 30,
        completionTokens: 5,
        timings: { retrievalMilliseconds: 3, generationMilliseconds: 40, totalMilliseconds: 43 },
      };
      const scored = scoredRowOf(row, prediction);
      const scores = Object.fromEntries(scorers.map((scorer) => [scorerOpName(scorer.name), scorer.score(scored)]));
      const now = new Date().toISOString();
      const context = callContext(plan, modelIndex, { 'row-index': String(rowIndex), 'row-id': row.id });
      batch.push(
        ...rowCalls(context, rowIndex, row, prediction, scores, { startedAt: now, predictedAt: now, endedAt: now }),
      );
      if (batch.length >= 3000) {
        await store.calls.upsertMany(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await store.calls.upsertMany(batch);
  }
  const results = await run(activities.pipeline.summarizeEvaluation, { plan, workflowId: runId });
  return results.map((result) => result.evaluationResultRef).reverse();
}

async function writeTraces(store: LineageStore, callCount: number): Promise<string> {
  const scope = { entity: 'bench', project: 'traces' };
  const start = Date.parse('2026-01-01T00:00:00Z');
  let batch: CallInput[] = [];
  for (let index = 0; index < callCount; index += 1) {
    const trace = Math.floor(index / 5);
    const child = index % 5;
    const startedAt = new Date(start + trace * 1000 + child).toISOString();
    batch.push({
      ...scope,
      id: `call-${index}`,
      traceId: `trace-${trace}`,
      parentId: child === 0 ? undefined : `call-${trace * 5}`,
      opName: child === 0 ? 'weave:///bench/traces/op/Evaluation.evaluate:abc' : 'weave:///bench/traces/op/predict:abc',
      startedAt,
      endedAt: new Date(Date.parse(startedAt) + 20).toISOString(),
      inputs: { question: `question ${index}` },
      output: { answer: `answer ${index}` },
      attributes: { 'wandb-run-id': `run-${trace % 100}` },
    });
    if (batch.length >= 5000) {
      await store.calls.upsertMany(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await store.calls.upsertMany(batch);
  return 'run-7';
}

async function timed(
  request: () => Promise<Response>,
): Promise<{ milliseconds: number; bytes: number; status: number }> {
  const started = process.hrtime.bigint();
  const response = await request();
  const body = await response.arrayBuffer();
  return {
    milliseconds: Number(process.hrtime.bigint() - started) / 1e6,
    bytes: body.byteLength,
    status: response.status,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const rowCount = argument('rows', 10_000);
  const callCount = argument('calls', 100_000);
  const repeats = argument('repeats', 5);
  const storeIndex = process.argv.indexOf('--store');
  const kept = storeIndex === -1 ? undefined : path.resolve(process.argv[storeIndex + 1]!);
  const folder = kept ?? fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-ui-'));
  fs.mkdirSync(folder, { recursive: true });
  const written = path.join(folder, `written-${rowCount}-${callCount}.json`);
  const store = await openLineageStore(`sqlite://${path.join(folder, 'lineage.db')}`);
  const server = await startWeaveServer({ store, token, port: 0 });
  const headers = { authorization: `Bearer ${token}` };
  try {
    let refs: string[];
    let runId: string;
    if (fs.existsSync(written)) {
      ({ refs, runId } = JSON.parse(fs.readFileSync(written, 'utf8')) as { refs: string[]; runId: string });
    } else {
      let started = Date.now();
      refs = await writeEvaluation(store, rowCount);
      console.error(`wrote the ${rowCount}-row evaluation in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      started = Date.now();
      runId = await writeTraces(store, callCount);
      console.error(`wrote ${callCount} calls in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      fs.writeFileSync(written, JSON.stringify({ refs, runId }));
    }

    const comparePath = `/ui/evaluations/compare?${new URLSearchParams(refs.map((ref): [string, string] => ['ids', ref])).toString()}`;
    const cases: { name: string; page: () => Promise<Response>; baseline: () => Promise<Response> }[] = [
      {
        name: `compare ${rowCount} rows (page of 500)`,
        page: () => fetch(`${server.url}${comparePath}`, { headers }),
        // Baseline: what `weft evals compare` reads — both results and the dataset rows — sent as JSON.
        baseline: async () => {
          const values = await Promise.all(refs.map((ref) => store.objects.get(ref)));
          const datasetRows = await store.datasets.rows((values[0]!.value as { dataset: string }).dataset);
          return new Response(JSON.stringify({ values: values.map((value) => value.value), datasetRows }));
        },
      },
      {
        name: `compare ${rowCount} rows (all rows on one page)`,
        page: () => fetch(`${server.url}${comparePath}&per_page=${rowCount}`, { headers }),
        baseline: async () => {
          const values = await Promise.all(refs.map((ref) => store.objects.get(ref)));
          const datasetRows = await store.datasets.rows((values[0]!.value as { dataset: string }).dataset);
          return new Response(JSON.stringify({ values: values.map((value) => value.value), datasetRows }));
        },
      },
      ...(
        [
          ['traces, newest 200 roots', '/ui/traces?entity=bench&project=traces', {}],
          [
            `traces, wandb-run-id=${runId}`,
            `/ui/traces?entity=bench&project=traces&wandb-run-id=${runId}`,
            { attributes: { 'wandb-run-id': runId } },
          ],
          [
            'traces, page 50 with nested calls',
            '/ui/traces?entity=bench&project=traces&roots=0&page=50',
            { offset: 49 * 200 },
          ],
        ] as const
      ).map(([name, pagePath, filter]) => ({
        name: `${name} of ${callCount} calls`,
        page: () => fetch(`${server.url}${pagePath}`, { headers }),
        // Baseline: the same calls read from the store and sent as JSON (what the JSON API does).
        baseline: async () =>
          new Response(
            JSON.stringify(
              await store.calls.query({
                entity: 'bench',
                project: 'traces',
                rootsOnly: !('offset' in filter),
                order: 'newest',
                limit: 201,
                ...filter,
              }),
            ),
          ),
      })),
    ];
    const report: Record<string, unknown>[] = [];
    for (const entry of cases) {
      const cold = await timed(entry.page);
      if (cold.status !== 200) throw new Error(`${entry.name}: HTTP ${cold.status}`);
      const warm = [];
      const baseline = [];
      for (let index = 0; index < repeats; index += 1) {
        warm.push((await timed(entry.page)).milliseconds);
        baseline.push((await timed(entry.baseline)).milliseconds);
      }
      report.push({
        case: entry.name,
        firstRequestMs: Math.round(cold.milliseconds),
        warmMedianMs: Math.round(median(warm)),
        baselineMedianMs: Math.round(median(baseline)),
        ratioToBaseline: Number((median(warm) / median(baseline)).toFixed(2)),
        htmlKiB: Math.round(cold.bytes / 1024),
      });
      console.error(JSON.stringify(report.at(-1)));
    }
    const chromiumPath = process.env.WEFT_CHROMIUM ?? '/usr/bin/chromium';
    if (fs.existsSync(chromiumPath)) {
      const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
      const context = await browser.newContext({ extraHTTPHeaders: headers });
      const page = await context.newPage();
      for (const [name, pagePath] of [
        [`compare ${rowCount} rows (page of 500)`, comparePath],
        [`compare ${rowCount} rows (all rows on one page)`, `${comparePath}&per_page=${rowCount}`],
        [`traces, newest 200 roots of ${callCount} calls`, '/ui/traces?entity=bench&project=traces'],
      ] as const) {
        const samples: { fcp: number; dcl: number }[] = [];
        for (let index = 0; index < 3; index += 1) {
          await page.goto(`${server.url}${pagePath}`, { waitUntil: 'load', timeout: 180_000 });
          samples.push(
            await page.evaluate(() => {
              // Runs in the page: the navigation entry's DOMContentLoaded end and the first contentful paint, in ms.
              const navigation = performance
                .getEntries()
                .find((entry) => (entry.entryType as string) === 'navigation') as unknown as {
                domContentLoadedEventEnd: number;
              };
              const paint = performance.getEntriesByName('first-contentful-paint')[0];
              return { fcp: paint ? paint.startTime : Number.NaN, dcl: navigation.domContentLoadedEventEnd };
            }),
          );
        }
        report.push({
          case: `browser: ${name}`,
          firstContentfulPaintMedianMs: Math.round(median(samples.map((sample) => sample.fcp))),
          domContentLoadedMedianMs: Math.round(median(samples.map((sample) => sample.dcl))),
        });
        console.error(JSON.stringify(report.at(-1)));
      }
      await browser.close();
    } else {
      report.push({ case: 'browser', skipped: `no chromium at ${chromiumPath}` });
    }
    console.log(
      JSON.stringify(
        { rows: rowCount, calls: callCount, cores: os.cpus().length, load: os.loadavg(), report },
        null,
        2,
      ),
    );
  } finally {
    await server.close();
    await store.close();
    if (!kept) fs.rmSync(folder, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
