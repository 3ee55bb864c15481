import { openLineageStore } from '../lib/lineage';
import { createRegistryActivities } from '../activities/registry';
import { createSmokeRegistryActivities } from '../activities/smoke';
import { legacyRegistryActivityNames } from '../workflows/contracts/lifecycle';
import { taskQueues } from '../workflows/contracts/task-queues';
import { main, runWorkerProcess } from './run-worker';
import { lineageStoreOptions } from '../lib/services';

/** Registry worker: artifact logging, registry links and alias moves on `weft-registry`; every operation idempotent. */
main(() =>
  runWorkerProcess('registry', async ({ config, workerName, onShutdown }) => {
    const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
    onShutdown(() => store.close());
    const registry = createRegistryActivities({ store, org: config.org });
    return {
      taskQueue: taskQueues.registry,
      maxConcurrentActivityTaskExecutions: 4,
      activities: {
        ...createSmokeRegistryActivities({ workerName, home: config.home }),
        ...registry,
        // Runs started before the rename may still schedule the old name.
        [legacyRegistryActivityNames.promoteRagModel]: registry.promoteRagModel,
      },
    };
  }),
);
