import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal/dev-server';
import { startWorkerProcess, workerKinds, type WorkerProcess } from '../../lib/temporal/stack';
import { smokeProgressQuery } from '../../workflows/contracts/smoke';
import { taskQueues } from '../../workflows/contracts/task-queues';
import type { smokePipelineWorkflow } from '../../workflows';
import { temporalCliForTests } from '../support/temporal';
import { waitFor } from '../support/wait';

describe('embedded stack: dev server + three worker processes', () => {
  let home: string;
  let port: number;
  let uiPort: number;
  let server: DevServer | undefined;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-stack-'));
    port = await freePort();
    uiPort = await freePort();
    server = await startDevServer({ home, port, uiPort });
    const environment = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default' };
    workers.push(...(await Promise.all(workerKinds.map((kind) => startWorkerProcess(kind, { home, environment })))));
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await server?.stop();
  });

  it('completes a smoke run across a server restart, keeping its history in the SQLite file', async () => {
    const address = server!.address;
    let connection = await Connection.connect({ address });
    let client = new Client({ connection });
    const workflowId = 'smoke-across-restart';
    const handle = await client.workflow.start<typeof smokePipelineWorkflow>('smokePipelineWorkflow', {
      taskQueue: taskQueues.pipeline,
      workflowId,
      args: [{ message: 'survive a restart', pauseMilliseconds: 6000 }],
    });
    await waitFor(
      'the run to reach its durable pause',
      async () => {
        const progress = await handle.query(smokeProgressQuery);
        return progress.stage === 'pause' ? progress : undefined;
      },
      60_000,
    );
    await connection.close();

    // Kill the server hard mid-run and start it again on the same database file.
    server!.process.kill('SIGKILL');
    await new Promise((resolve) => server!.process.once('exit', resolve));
    server = await startDevServer({ home, port, uiPort });

    connection = await Connection.connect({ address });
    client = new Client({ connection });
    try {
      const result = await client.workflow.getHandle<typeof smokePipelineWorkflow>(workflowId).result();
      expect(result.steps.map((step) => step.taskQueue)).toEqual(['weft-pipeline', 'weft-gpu', 'weft-registry']);
      // Each worker kind ran in its own process.
      expect(new Set(result.steps.map((step) => step.worker)).size).toBe(3);
      const records = fs.readFileSync(path.join(home, 'smoke-runs.jsonl'), 'utf8').trim().split('\n');
      expect(records.filter((line) => line.includes(workflowId))).toHaveLength(1);
    } finally {
      await connection.close();
    }

    // What a user sees with the Temporal CLI against the embedded server.
    const listing = execFileSync(
      temporalCliForTests(),
      ['workflow', 'list', '--address', address, '--query', `WorkflowId = '${workflowId}'`, '--output', 'json'],
      { encoding: 'utf8' },
    );
    const [run] = JSON.parse(listing) as { status: string | number }[];
    expect(String(run.status)).toMatch(/COMPLETED|^2$/);
  });

  it('a worker pointed at a dead address exits non-zero with a readable message', async () => {
    const deadPort = await freePort();
    await expect(
      startWorkerProcess('gpu', {
        home,
        environment: { TEMPORAL_ADDRESS: `127.0.0.1:${deadPort}` },
        readyTimeoutMilliseconds: 60_000,
      }),
    ).rejects.toThrow(
      new RegExp(
        `exited before it was ready \\(code 1\\)[\\s\\S]*Cannot connect to Temporal at 127\\.0\\.0\\.1:${deadPort}`,
      ),
    );
  });
});
