import { createEvaluationActivities } from '../activities/evaluation';
import { createGateActivities } from '../activities/gate';
import { createIntegrateActivities } from '../activities/integrate';
import { createReevaluationActivities } from '../activities/reevaluation';
import { createSmokePipelineActivities } from '../activities/smoke';
import { createValidationActivities } from '../activities/validation';
import { taskQueues } from '../workflows/contracts/task-queues';
import { main, runWorkerProcess } from './run-worker';
import { openWorkerServices } from '../lib/services';
import { startRunReaper } from '../lib/temporal/run-reaper';

/** Orchestrator worker: every workflow, plus the light activities of the `weft-pipeline` queue. */
main(() =>
  runWorkerProcess('orchestrator', async ({ config, workerName, logger, onShutdown }) => {
    const services = await openWorkerServices(config, logger);
    onShutdown(() => services.close());
    // Lineage runs of workflows that failed, were cancelled or terminated are closed here: no workflow code runs then.
    const reaper = startRunReaper({ store: services.store, logger });
    onShutdown(() => reaper.stop());
    const evaluation = createEvaluationActivities({ store: services.store, rag: services.rag, workerName });
    return {
      taskQueue: taskQueues.pipeline,
      workflowsPath: require.resolve('../workflows'),
      activities: {
        ...createSmokePipelineActivities({ workerName }),
        ...createValidationActivities({ store: services.store }),
        ...evaluation.pipeline,
        ...createGateActivities({ store: services.store }),
        ...createIntegrateActivities({ store: services.store, org: config.org, rag: services.rag }),
        ...createReevaluationActivities({
          store: services.store,
          org: config.org,
          alertCommand: config.alertCommand,
          alertWebhookUrl: config.alertWebhookUrl,
        }),
      },
    };
  }),
);
