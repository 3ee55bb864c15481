import { createSmokePipelineActivities } from '../activities/smoke';
import { taskQueues } from '../workflows/contracts/task-queues';
import { main, runWorkerProcess } from './run-worker';

/** Orchestrator worker: every workflow, plus the light activities of the `weft-pipeline` queue. */
main(() =>
  runWorkerProcess('orchestrator', ({ workerName }) => ({
    taskQueue: taskQueues.pipeline,
    workflowsPath: require.resolve('../workflows'),
    activities: { ...createSmokePipelineActivities({ workerName }) },
  })),
);
