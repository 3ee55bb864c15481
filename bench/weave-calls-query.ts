/**
 * `weft serve`'s calls/query, calls/stream_query and calls/query_stats on a project of 100,000 calls: latency per
 * request and the server process's peak RSS (VmHWM), against the previous implementation run side by side as the
 * baseline (`baselineQueryCalls`: read every call of the project, then filter, sort and page in memory).
 * Each (implementation, request) pair runs in a fresh server process, so its peak RSS is that request's.
 *
 * Run: npx tsx bench/weave-calls-query.ts [--calls 100000] [--repeats 3] [--lineage-url postgres://…]
 * (default: a new SQLite store in a temporary folder; a PostgreSQL URL gets a fresh schema, dropped afterwards).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openLineageStore, type CallInput, type LineageStore } from '../lib/lineage';
import { matchesQuery } from '../lib/weave-server/query-expression';
import { compareBy, matchesFilter, parseProjectId, toCallSchema } from '../lib/weave-server/trace-server';
import { callsQueryRequest, callsQueryStatsRequest } from '../lib/weave-server/schemas';

const ENTITY = 'bench';
const PROJECT = 'calls';
// 40+ characters without "-": what `weft serve` asks of a token wandb clients can use (else it warns on stderr).
const TOKEN = crypto.randomBytes(20).toString('hex');
const repositoryRoot = path.resolve(__dirname, '..');

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : process.argv[index + 1]!;
}

// ---------------------------------------------------------------------------------------------------------------
// The baseline: the previous implementation of calls/query and calls/query_stats (before the queries ran in SQL).

/** What `WeaveTraceServer.queryCalls` did before: every call of the project into memory, then filter, sort and page. */
async function baselineQueryCalls(store: LineageStore, body: unknown): Promise<unknown[]> {
  const request = callsQueryRequest.parse(body);
  const scope = parseProjectId(request.project_id);
  const records = await store.calls.query({ ...scope, limit: 100_000 });
  const matching = records
    .map(toCallSchema)
    .filter((call) => matchesFilter(call, request.filter) && matchesQuery(request.query, call));
  const comparators = (request.sort_by ?? []).map((item) => compareBy(item.field, item.direction));
  const sorted = [...matching].sort((left, right) => {
    for (const comparator of comparators) {
      const order = comparator(left, right);
      if (order !== 0) return order;
    }
    return 0;
  });
  const start = request.offset ?? 0;
  return sorted.slice(start, request.limit === null || request.limit === undefined ? undefined : start + request.limit);
}

/** The baseline as a server process: the same routes, answered the old way. */
async function runBaselineServer(lineageUrl: string, blobDirectory: string): Promise<void> {
  const store = await openLineageStore(lineageUrl, { blobDirectory });
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      const answer = async (): Promise<string> => {
        if (request.url === '/calls/query_stats') {
          callsQueryStatsRequest.parse(body);
          return JSON.stringify({ count: (await baselineQueryCalls(store, body)).length });
        }
        const calls = await baselineQueryCalls(store, body);
        if (request.url === '/calls/stream_query') return calls.map((call) => `${JSON.stringify(call)}\n`).join('');
        return JSON.stringify({ calls });
      };
      answer().then(
        (text) => response.writeHead(200, { 'content-type': 'application/json' }).end(text),
        (error: Error) => response.writeHead(500).end(JSON.stringify({ detail: error.message })),
      );
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
  });
}

// ---------------------------------------------------------------------------------------------------------------

const OPS = ['RagModel.predict', 'retrieve', 'generate'].map((name) => `weave:///${ENTITY}/${PROJECT}/op/${name}:v1`);

/** A trace of three calls (predict, with retrieve and generate under it), each about 1 KB like a real RAG call. */
function traceCalls(traceIndex: number): CallInput[] {
  const traceId = crypto.randomUUID();
  const rootId = crypto.randomUUID();
  const base = Date.UTC(2026, 0, 1) + traceIndex * 10;
  const tenant = `tenant-${traceIndex % 50}`;
  return OPS.map((opName, index) => ({
    entity: ENTITY,
    project: PROJECT,
    id: index === 0 ? rootId : crypto.randomUUID(),
    opName,
    traceId,
    parentId: index === 0 ? undefined : rootId,
    startedAt: new Date(base + index).toISOString(),
    endedAt: new Date(base + index + 3).toISOString(),
    inputs: { question: `question ${traceIndex}: ${'how does the retrieval pipeline rank passages? '.repeat(5)}` },
    output: { answer: `answer ${traceIndex}: ${'the passages are ranked by cosine similarity. '.repeat(8)}` },
    attributes: { weave: { source: 'js-sdk', client_version: '0.11.0' }, tenant },
    summary: { weave: { status: 'success', latency_ms: (traceIndex * 7 + index) % 997 } },
  }));
}

async function fill(store: LineageStore, callCount: number): Promise<number> {
  const started = process.hrtime.bigint();
  let batch: CallInput[] = [];
  for (let trace = 0; trace * 3 < callCount; trace++) {
    batch.push(...traceCalls(trace).slice(0, callCount - trace * 3));
    if (batch.length >= 999) {
      await store.calls.upsertMany(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await store.calls.upsertMany(batch);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Peak and current resident set of a process, in MiB (Linux /proc). */
function memoryOf(pid: number): { peakMiB: number; currentMiB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const read = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) / 1024;
  return { peakMiB: read('VmHWM'), currentMiB: read('VmRSS') };
}

async function startServer(
  implementation: 'bounded' | 'baseline',
  lineageUrl: string,
  home: string,
): Promise<{ child: ChildProcess; url: string }> {
  const child =
    implementation === 'bounded'
      ? spawn(process.execPath, [path.join(repositoryRoot, 'bin', 'weft'), 'serve', '--port', '0'], {
          env: { ...process.env, WEFT_SERVE_TOKEN: TOKEN, WEFT_LINEAGE_URL: lineageUrl, WEFT_HOME: home },
          stdio: ['ignore', 'pipe', 'inherit'],
        })
      : spawn(
          process.execPath,
          ['--import', 'tsx', __filename, '--baseline-server', lineageUrl, '--blobs', path.join(home, 'blobs')],
          {
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const match = /(http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the ${implementation} server exited (${code}) before listening`)));
  });
  child.stdout!.resume();
  return { child, url };
}

async function post(
  url: string,
  route: string,
  body: unknown,
): Promise<{ status: number; bytes: number; digest: string }> {
  const response = await fetch(`${url}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = Buffer.from(await response.arrayBuffer());
  return {
    status: response.status,
    bytes: answer.length,
    digest: crypto.createHash('sha256').update(answer).digest('hex'),
  };
}

interface Measurement {
  medianSeconds: number;
  peakMiB: number;
  idleMiB: number;
  bytes: number;
  status: number;
  digest: string;
}

async function measure(
  implementation: 'bounded' | 'baseline',
  lineageUrl: string,
  home: string,
  route: string,
  body: unknown,
  repeats: number,
): Promise<Measurement> {
  const { child, url } = await startServer(implementation, lineageUrl, home);
  try {
    const idleMiB = memoryOf(child.pid!).peakMiB;
    const seconds: number[] = [];
    let last = { status: 0, bytes: 0, digest: '' };
    for (let attempt = 0; attempt < repeats; attempt++) {
      const started = process.hrtime.bigint();
      last = await post(url, route, body);
      seconds.push(Number(process.hrtime.bigint() - started) / 1e9);
    }
    seconds.sort((a, b) => a - b);
    return {
      medianSeconds: seconds[Math.floor(seconds.length / 2)]!,
      peakMiB: memoryOf(child.pid!).peakMiB,
      idleMiB,
      ...last,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

async function main(): Promise<void> {
  const callCount = Number(argument('calls', '100000'));
  const repeats = Number(argument('repeats', '3'));
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-calls-query-'));
  let lineageUrl = argument('lineage-url', `sqlite://${path.join(folder, 'lineage.db')}`);
  let dropSchema: (() => Promise<void>) | undefined;
  if (lineageUrl.startsWith('postgres')) {
    const schema = `bench_calls_${crypto.randomBytes(4).toString('hex')}`;
    const base = lineageUrl;
    const url = new URL(base);
    url.searchParams.set('schema', schema);
    lineageUrl = url.toString();
    dropSchema = async () => {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    };
  }
  try {
    const store = await openLineageStore(lineageUrl, { blobDirectory: path.join(folder, 'blobs') });
    const fillSeconds = await fill(store, callCount);
    await store.close();
    process.stdout.write(
      `store: ${lineageUrl.split('?')[0]}\ncalls: ${callCount} (inserted in ${fillSeconds.toFixed(1)} s)\n` +
        `each figure: median of ${repeats} requests; peak RSS = VmHWM of a fresh server process after them\n\n`,
    );
    const projectId = `${ENTITY}/${PROJECT}`;
    const filtered = {
      project_id: projectId,
      filter: { op_names: [`weave:///${ENTITY}/${PROJECT}/op/retrieve:*`] },
      query: { $expr: { $eq: [{ $getField: 'attributes.tenant' }, { $literal: 'tenant-7' }] } },
      sort_by: [{ field: 'started_at', direction: 'desc' }],
      limit: 100,
    };
    const cases: { name: string; route: string; body: unknown }[] = [
      { name: 'calls/query, no filter, limit 1', route: '/calls/query', body: { project_id: projectId, limit: 1 } },
      { name: 'calls/query, op + attribute filter, newest 100', route: '/calls/query', body: filtered },
      {
        name: `calls/stream_query, 1000 at offset ${Math.max(0, callCount - 10_000)}`,
        route: '/calls/stream_query',
        body: { project_id: projectId, offset: Math.max(0, callCount - 10_000), limit: 1000 },
      },
      { name: 'calls/query_stats, no filter', route: '/calls/query_stats', body: { project_id: projectId } },
      {
        name: 'calls/query_stats, op + attribute filter',
        route: '/calls/query_stats',
        body: { project_id: projectId, filter: filtered.filter, query: filtered.query },
      },
    ];
    const rows: string[] = [];
    for (const item of cases) {
      const bounded = await measure('bounded', lineageUrl, folder, item.route, item.body, repeats);
      const baseline = await measure('baseline', lineageUrl, folder, item.route, item.body, repeats);
      if (bounded.status !== 200 || baseline.status !== 200) {
        throw new Error(`${item.name}: status ${bounded.status} (weft serve) / ${baseline.status} (baseline)`);
      }
      // Same request, same answer, byte for byte: the bounded server is measured doing the same work.
      if (bounded.digest !== baseline.digest) {
        throw new Error(`${item.name}: weft serve and the baseline answered differently`);
      }
      rows.push(
        `${item.name.padEnd(50)} weft serve ${bounded.medianSeconds.toFixed(3).padStart(7)} s ${bounded.peakMiB.toFixed(0).padStart(5)} MiB` +
          ` | baseline ${baseline.medianSeconds.toFixed(3).padStart(7)} s ${baseline.peakMiB.toFixed(0).padStart(5)} MiB` +
          ` | baseline/weft: time ×${(baseline.medianSeconds / bounded.medianSeconds).toFixed(1)}, peak RSS ×${(baseline.peakMiB / bounded.peakMiB).toFixed(1)}` +
          ` (idle ${bounded.idleMiB.toFixed(0)} / ${baseline.idleMiB.toFixed(0)} MiB, ${bounded.bytes} bytes)`,
      );
      process.stdout.write(`${rows[rows.length - 1]}\n`);
    }
  } finally {
    await dropSchema?.();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

if (process.argv.includes('--baseline-server')) {
  void runBaselineServer(argument('baseline-server', ''), argument('blobs', ''));
} else {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
