import { createSmokeGpuActivities } from '../activities/smoke';
import { taskQueues } from '../workflows/contracts/task-queues';
import { main, runWorkerProcess } from './run-worker';

/**
 * GPU worker (one process per GPU, or per CPU inference host): fine-tune and batched predict on the
 * `weft-gpu` queue. Its activity slots equal WEFT_GPU_SLOTS, so Temporal never hands it more
 * concurrent inference than the host was configured for.
 */
main(() =>
  runWorkerProcess('gpu', ({ config, workerName }) => ({
    taskQueue: taskQueues.gpu,
    maxConcurrentActivityTaskExecutions: config.gpuSlots,
    // Heartbeats carry training progress and bring back cancellation: send them within seconds, not the
    // default 80% of the heartbeat timeout, so a cancelled fine-tune stops its trainer promptly.
    maxHeartbeatThrottleInterval: '2 seconds',
    activities: { ...createSmokeGpuActivities({ workerName }) },
  })),
);
