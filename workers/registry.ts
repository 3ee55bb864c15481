import { createSmokeRegistryActivities } from '../activities/smoke';
import { taskQueues } from '../workflows/contracts/task-queues';
import { main, runWorkerProcess } from './run-worker';

/** Registry worker: artifact logging, registry links and alias moves on `weft-registry`; every operation idempotent. */
main(() =>
  runWorkerProcess('registry', ({ config, workerName }) => ({
    taskQueue: taskQueues.registry,
    maxConcurrentActivityTaskExecutions: 4,
    activities: { ...createSmokeRegistryActivities({ workerName, home: config.home }) },
  })),
);
