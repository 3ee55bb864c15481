import { proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import { lightActivity, registryActivity, inferenceActivity } from './contracts/activity-options';
import {
  smokeProgressQuery,
  type SmokeGpuActivities,
  type SmokePipelineActivities,
  type SmokePipelineInput,
  type SmokePipelineResult,
  type SmokeProgress,
  type SmokeRegistryActivities,
} from './contracts/smoke';
import { taskQueues } from './contracts/task-queues';

const pipelineActivities = proxyActivities<SmokePipelineActivities>({
  ...lightActivity,
  taskQueue: taskQueues.pipeline,
});
const gpuActivities = proxyActivities<SmokeGpuActivities>({ ...inferenceActivity, taskQueue: taskQueues.gpu });
const registryActivities = proxyActivities<SmokeRegistryActivities>({
  ...registryActivity,
  taskQueue: taskQueues.registry,
});

/** Crosses all three task queues with one real step each; `weft run smoke` starts it. */
export async function smokePipelineWorkflow(input: SmokePipelineInput): Promise<SmokePipelineResult> {
  const progress: SmokeProgress = { stage: 'starting', completedSteps: 0, totalSteps: 3, steps: [] };
  setHandler(smokeProgressQuery, () => progress);

  progress.stage = 'digest';
  const digested = await pipelineActivities.digestMessage(input.message);
  progress.steps.push(digested);
  progress.completedSteps = 1;

  progress.stage = 'embed';
  const embedded = await gpuActivities.embedMessage(input.message);
  progress.steps.push(embedded);
  progress.completedSteps = 2;

  if (input.pauseMilliseconds && input.pauseMilliseconds > 0) {
    progress.stage = 'pause';
    await sleep(input.pauseMilliseconds);
  }

  progress.stage = 'record';
  const recorded = await registryActivities.recordSmokeRun({
    workflowId: workflowInfo().workflowId,
    digest: digested.digest,
    vectorNorm: embedded.vectorNorm,
  });
  progress.steps.push(recorded);
  progress.completedSteps = 3;
  progress.stage = 'done';

  return {
    digest: digested.digest,
    vectorNorm: embedded.vectorNorm,
    recordPath: recorded.recordPath,
    steps: progress.steps,
  };
}
