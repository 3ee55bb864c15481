import { openLineageStore } from '../lib/lineage';
import { createRegistryActivities } from '../activities/registry';
import { createSmokeRegistryActivities } from '../activities/smoke';
import { createWandbPublishActivities } from '../activities/wandb-publish';
import { openWandbPublisher } from '../lib/wandb-remote';
import { legacyRegistryActivityNames } from '../workflows/contracts/lifecycle';
import { taskQueues } from '../workflows/contracts/task-queues';
import { main, runWorkerProcess } from './run-worker';
import { lineageStoreOptions } from '../lib/services';

/** Registry worker: artifact logging, registry links and alias moves on `weft-registry`; every operation idempotent. */
main(() =>
  runWorkerProcess('registry', async ({ config, workerName, logger, onShutdown }) => {
    const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
    onShutdown(() => store.close());
    // W&B publishing (WANDB_ENTITY, WANDB_BASE_URL, WANDB_API_KEY): checked now, so a wrong key stops the worker here.
    const wandb = await openWandbPublisher(store, process.env, { project: config.project }, logger);
    const registry = createRegistryActivities({ store, org: config.org, wandb });
    return {
      taskQueue: taskQueues.registry,
      maxConcurrentActivityTaskExecutions: 4,
      activities: {
        ...createSmokeRegistryActivities({ workerName, home: config.home }),
        ...registry,
        ...createWandbPublishActivities({ publisher: wandb }),
        // Runs started before the rename may still schedule the old name.
        [legacyRegistryActivityNames.promoteRagModel]: registry.promoteRagModel,
      },
    };
  }),
);
