import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { parseConfig, projectRoot } from '../../lib/config/config';
import { bootstrapDemoProject } from '../../lib/rag';
import { openWorkerServices, type WorkerServices } from '../../lib/services';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal/dev-server';
import { startWorkerProcess, type WorkerProcess } from '../../lib/temporal/stack';
import { taskQueues } from '../../workflows/contracts/task-queues';
import type { evaluateWorkflow } from '../../workflows';
import { requireBuiltModels } from '../support/models';

/**
 * The gpu pool on one host, on CPU: two gpu worker processes (device ordinals 0 and 1, one slot each)
 * on the `weft-gpu` queue serve one evaluation together — the routing a multi-GPU host uses.
 */
describe('gpu worker pool: several gpu worker processes serve one evaluation', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-gpu-pool-'));
  let server: DevServer;
  let services: WorkerServices;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    requireBuiltModels();
    server = await startDevServer({ home, port: await freePort(), uiPort: await freePort() });
    const environment = {
      TEMPORAL_ADDRESS: server.address,
      WEFT_HOME: home,
      WEFT_MODELS_DIR: parseConfig(process.env).modelsDir,
      WEFT_LINEAGE_URL: `sqlite://${path.join(home, 'lineage.db')}`,
      WEFT_GPU_SLOTS: '1',
    };
    services = await openWorkerServices(parseConfig({ ...environment }));
    workers.push(
      await startWorkerProcess('orchestrator', { home, environment }),
      ...(await Promise.all(
        ['0', '1'].map((device) =>
          startWorkerProcess('gpu', {
            home,
            instance: device,
            environment: { ...environment, WEFT_CUDA_DEVICE_ID: device },
          }),
        ),
      )),
    );
  }, 240_000);

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await services?.close();
    await server?.stop();
  });

  it('spreads the predict batches over both gpu workers, each row predicted once', async () => {
    const demo = await bootstrapDemoProject(services.rag, {
      dataDirectory: path.join(projectRoot, 'data', 'climate'),
      modelsDirectory: parseConfig(process.env).modelsDir,
      baseModel: 'base-chat',
    });
    const connection = await Connection.connect({ address: server.address });
    try {
      const client = new Client({ connection });
      const result = await client.workflow.execute<typeof evaluateWorkflow>('evaluateWorkflow', {
        taskQueue: taskQueues.pipeline,
        workflowId: 'gpu-pool-evaluation',
        args: [
          {
            evaluationRef: demo.evaluationRef,
            ragModelRefs: [demo.ragModelRef],
            fresh: true,
            batchSize: 8,
            maxParallelBatches: 2,
          },
        ],
      });
      expect(result.predictedRows).toBe(80);
      const predictions = await services.store.calls.query({
        attributes: { 'evaluation-run-id': 'gpu-pool-evaluation', cached: 'false' },
        limit: 1000,
      });
      const byWorker = new Map<string, number>();
      for (const call of predictions) {
        const worker = call.attributes.worker;
        if (typeof worker === 'string' && call.opName.includes('RagModel.predict'))
          byWorker.set(worker, (byWorker.get(worker) ?? 0) + 1);
      }
      const gpuWorkerNames = workers.slice(1).map((worker) => `${os.hostname()}:${worker.process.pid}`);
      expect([...byWorker.keys()].sort()).toEqual(gpuWorkerNames.sort());
      expect([...byWorker.values()].reduce((sum, count) => sum + count, 0)).toBe(80);
    } finally {
      await connection.close();
    }
  }, 300_000);
});
