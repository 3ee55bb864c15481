/**
 * Calls per second recorded through `weft serve` by the official weave SDK, against the same calls written
 * straight into the lineage store (the baseline): the price of the HTTP trace-server API, as a ratio.
 * Run: npx tsx bench/weave-trace-server.ts [--calls 2000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as weave from 'weave';
import { openLineageStore } from '../lib/lineage';
import { startWeaveServer } from '../lib/weave-server';

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

async function main(): Promise<void> {
  const callCount = argument('calls', 2000);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-weave-'));
  const store = await openLineageStore(`sqlite://${path.join(folder, 'lineage.db')}`);
  const token = 'bench-token-0123456789';
  const server = await startWeaveServer({ store, token, port: 0 });
  try {
    process.env.WF_TRACE_SERVER_URL = server.url;
    process.env.WANDB_API_KEY = token;
    process.env.WEAVE_PRINT_CALL_LINK = 'false';
    const client = await weave.init('bench/sdk');
    const predict = weave.op(async function predict(question: string) {
      return `answer to ${question}`;
    });
    const sdkStart = process.hrtime.bigint();
    for (let index = 0; index < callCount; index++) await predict(`question ${index}`);
    await client.waitForBatchProcessing();
    const sdkSeconds = Number(process.hrtime.bigint() - sdkStart) / 1e9;
    const recorded = await store.calls.query({ entity: 'bench', project: 'sdk', limit: callCount + 10 });
    if (recorded.length !== callCount)
      throw new Error(`expected ${callCount} calls, the store holds ${recorded.length}`);

    const directStart = process.hrtime.bigint();
    for (const call of recorded) {
      const started = { ...call, entity: 'bench', project: 'direct', endedAt: undefined, output: undefined };
      await store.calls.upsert({ ...started, parentId: undefined, displayName: undefined, exception: undefined });
      await store.calls.upsert({
        ...started,
        endedAt: call.endedAt!,
        output: call.output,
        parentId: undefined,
        displayName: undefined,
        exception: undefined,
      });
    }
    const directSeconds = Number(process.hrtime.bigint() - directStart) / 1e9;

    const sdkRate = callCount / sdkSeconds;
    const directRate = callCount / directSeconds;
    process.stdout.write(
      `calls: ${callCount}\n` +
        `weave SDK → weft serve → store : ${sdkRate.toFixed(0)} calls/s (${sdkSeconds.toFixed(2)} s, start and end per call)\n` +
        `store.calls.upsert directly    : ${directRate.toFixed(0)} calls/s (${directSeconds.toFixed(2)} s, start and end per call)\n` +
        `ratio SDK path / direct        : ${(sdkRate / directRate).toFixed(2)}\n`,
    );
  } finally {
    await server.close();
    await store.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
