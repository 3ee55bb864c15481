import { createEvaluationActivities } from '../activities/evaluation';
import { createFineTuneActivities } from '../activities/fine-tune';
import { createSmokeGpuActivities } from '../activities/smoke';
import { taskQueues } from '../workflows/contracts/task-queues';
import { main, runWorkerProcess } from './run-worker';
import { openWorkerServices } from '../lib/services';

/**
 * GPU worker (one process per GPU, or per CPU inference host): fine-tune and batched predict on the
 * `weft-gpu` queue. Its activity slots equal WEFT_GPU_SLOTS, so Temporal never hands it more
 * concurrent inference than the host was configured for; concurrent predict batches share forward
 * passes through the RAG runtime's micro-batcher.
 */
main(() =>
  runWorkerProcess('gpu', async ({ config, workerName, logger, onShutdown }) => {
    const services = await openWorkerServices(config, logger);
    onShutdown(() => services.close());
    const evaluation = createEvaluationActivities({ store: services.store, rag: services.rag, workerName });
    return {
      taskQueue: taskQueues.gpu,
      maxConcurrentActivityTaskExecutions: config.gpuSlots,
      // Heartbeats carry training progress and bring back cancellation: send them within seconds, not the
      // default 80% of the heartbeat timeout, so a cancelled fine-tune stops its trainer promptly.
      maxHeartbeatThrottleInterval: '2 seconds',
      activities: {
        ...createSmokeGpuActivities({ workerName }),
        ...evaluation.gpu,
        ...createFineTuneActivities({
          store: services.store,
          modelsDirectory: config.modelsDir,
          python: config.python,
          device: config.executionProvider === 'cuda' ? `cuda:${config.cudaDeviceId}` : 'cpu',
          materializeModel: (artifactRef) => services.materializeModel(artifactRef, ['hf/config.json']),
        }),
      },
    };
  }),
);
