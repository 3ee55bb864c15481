import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { openLineageStore, type CallInput } from '../../lib/lineage';
import { TraceForwarder, type TraceLoss } from '../../lib/weave-server';
import { killProcess, spawnServe, TEST_TOKEN, type ServeProcess } from './support/weave-server-fixture';

/** Runs a script with node in the project root; resolves with its exit code and output. */
function runNode(script: string, environment: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      cwd: path.resolve(__dirname, '..', '..'),
      env: { ...process.env, ...environment },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

function call(index: number): CallInput {
  return {
    entity: 'acme',
    project: 'mirror',
    id: `mirrored-${index}`,
    opName: 'weave:///acme/mirror/op/RagModel.predict:abc',
    traceId: 'mirror-trace',
    startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, index)).toISOString(),
    endedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, 1, index)).toISOString(),
    inputs: { question: `question ${index}` },
    output: `answer ${index}`,
    attributes: { 'workflow-id': 'wf-mirror' },
  };
}

async function mirroredCount(lineageUrl: string): Promise<number> {
  const store = await openLineageStore(lineageUrl);
  try {
    return (await store.calls.query({ entity: 'acme', project: 'mirror', limit: 10_000 })).filter(
      (item) => item.endedAt !== null,
    ).length;
  } finally {
    await store.close();
  }
}

/** A port nothing listens on: bound, read, released. */
async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('TraceForwarder: mirroring calls to a trace server that goes away', () => {
  let folder: string;
  let lineageUrl: string;
  let serve: ServeProcess | undefined;

  beforeEach(() => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-forwarder-'));
    lineageUrl = `sqlite://${path.join(folder, 'lineage.db')}`;
  });

  afterEach(async () => {
    if (serve) await killProcess(serve.child);
    serve = undefined;
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('survives the server being killed mid-stream and delivers everything once it is back', async () => {
    serve = await spawnServe(lineageUrl, folder);
    const losses: TraceLoss[] = [];
    const forwarder = new TraceForwarder({
      url: serve.url,
      apiKey: TEST_TOKEN,
      batchSize: 20,
      retryDelayMilliseconds: 50,
      maxRetryDelayMilliseconds: 400,
      onLoss: (loss) => losses.push(loss),
    });
    // The op the calls name goes first, so its ref resolves on the mirror.
    forwarder.forwardObject('acme/mirror', 'RagModel.predict', {
      _type: 'CustomWeaveType',
      weave_type: { type: 'Op' },
    });
    for (let index = 0; index < 100; index++) forwarder.forward(call(index));
    const firstHalf = await forwarder.flush(30_000);
    expect(firstHalf).toMatchObject({ queued: 0, delivered: 201, lost: 0 });

    // The server dies (SIGKILL: no goodbye) while the stream goes on.
    await killProcess(serve.child);
    for (let index = 100; index < 200; index++) forwarder.forward(call(index));
    const duringOutage = await forwarder.flush(1_500);
    expect(duringOutage.queued).toBe(200);
    expect(duringOutage.failedAttempts).toBeGreaterThan(0);
    expect(duringOutage.lastError).toMatch(/unreachable/);

    // Back on the same port over the same store: the queue drains.
    serve = await spawnServe(lineageUrl, folder, serve.port);
    const final = await forwarder.close(30_000);
    expect(final).toMatchObject({ queued: 0, delivered: 401, lost: 0 });
    expect(losses).toEqual([]);
    expect(await mirroredCount(lineageUrl)).toBe(200);
    const mirror = await openLineageStore(lineageUrl);
    try {
      expect(
        (await mirror.objects.latest('RagModel.predict', { entity: 'acme', project: 'mirror' })).value,
      ).toMatchObject({
        weave_type: { type: 'Op' },
      });
    } finally {
      await mirror.close();
    }
  });

  it('reports what it could not deliver when the server never comes back, and keeps the process alive', async () => {
    const losses: TraceLoss[] = [];
    const forwarder = new TraceForwarder({
      url: `http://127.0.0.1:${await unusedPort()}`,
      apiKey: TEST_TOKEN,
      retryDelayMilliseconds: 20,
      maxRetryDelayMilliseconds: 100,
      maxQueuedItems: 50,
      onLoss: (loss) => losses.push(loss),
    });
    for (let index = 0; index < 40; index++) forwarder.forward(call(index));
    const report = await forwarder.close(500);
    // 80 items (start + end per call) for a queue of 50: 30 dropped as the queue filled, 50 left at close.
    expect(report).toMatchObject({
      delivered: 0,
      lost: 80,
      lostByReason: { 'queue-full': 30, rejected: 0, closed: 50 },
    });
    expect(losses.map((loss) => loss.reason)).toContain('closed');
    expect(losses.find((loss) => loss.reason === 'closed')!.detail).toMatch(
      /still waiting .* \(last error: .*unreachable/,
    );
    // Calls after close are counted too, not silently ignored.
    forwarder.forward(call(99));
    expect(forwarder.stats().lostByReason.closed).toBe(52);
  });

  it('drops and reports batches the server rejects (wrong token) instead of retrying them forever', async () => {
    serve = await spawnServe(lineageUrl, folder);
    const losses: TraceLoss[] = [];
    const forwarder = new TraceForwarder({
      url: serve.url,
      apiKey: 'not-the-token',
      onLoss: (loss) => losses.push(loss),
    });
    forwarder.forward(call(1));
    const report = await forwarder.close(10_000);
    expect(report).toMatchObject({ delivered: 0, lost: 2, lostByReason: { rejected: 2 } });
    expect(losses[0]!.detail).toMatch(/HTTP 401 .*WEFT_SERVE_TOKEN/);
  });

  it('exists because the weave SDK ends its process after 11 failed call uploads', async () => {
    // A trace server that stores ops but refuses every call batch, as one in trouble would.
    const refusing = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        const refused = request.url === '/call/upsert_batch';
        response.writeHead(refused ? 400 : 200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(refused ? { detail: 'refused' } : { digest: 'abc' }));
      });
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    try {
      const script = `
        const weave = require('weave');
        weave.init('acme/app').then(async () => {
          await weave.op(async function ping() { return 1; })();
          setInterval(() => {}, 1000);
        });`;
      const result = await runNode(script, {
        WF_TRACE_SERVER_URL: `http://127.0.0.1:${(refusing.address() as net.AddressInfo).port}`,
        WANDB_API_KEY: TEST_TOKEN,
        WEAVE_PRINT_CALL_LINK: 'false',
      });
      expect(result.code).toBe(1);
      expect(result.output).toContain('Exceeded max errors: 10; exiting');
    } finally {
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
  });

  it('weft serve refuses to start without WEFT_SERVE_TOKEN and says how to set it', async () => {
    const result = await runNode(
      `require('tsx/cjs'); process.argv = [process.argv[0], 'serve-process', 'serve', '--port', '0'];
       require('./test/weave/support/serve-process.ts');`,
      { WEFT_HOME: folder, WEFT_LINEAGE_URL: lineageUrl, WEFT_SERVE_TOKEN: undefined },
    );
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/WEFT_SERVE_TOKEN.*WANDB_API_KEY/s);
  });
});
