import { continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import { inferenceActivity, lightActivity } from './contracts/activity-options';
import {
  evaluationProgressQuery,
  type EvaluateWorkflowInput,
  type EvaluateWorkflowResult,
  type EvaluationGpuActivities,
  type EvaluationPipelineActivities,
  type EvaluationProgress,
} from './contracts/evaluation';
import { taskQueues } from './contracts/task-queues';

const pipeline = proxyActivities<EvaluationPipelineActivities>({ ...lightActivity, taskQueue: taskQueues.pipeline });
const gpu = proxyActivities<EvaluationGpuActivities>({ ...inferenceActivity, taskQueue: taskQueues.gpu });

/** Default rows per predict activity: large enough to fill a micro-batch, small enough to retry cheaply. */
const defaultBatchSize = 8;
/** Batches this run handles before it continues as new, keeping its history bounded for large datasets. */
const batchesPerRun = 400;

/**
 * Evaluates one or more RagModels on the same dataset version: batches of rows go to predict
 * activities on the gpu queue (up to `maxParallelBatches` at once), each followed by scoring on the
 * pipeline queue. Per-row predictions and scores are calls in the lineage store keyed by the plan's
 * evaluation run id, so a retried or resumed batch never predicts a row twice.
 */
export async function evaluateWorkflow(input: EvaluateWorkflowInput): Promise<EvaluateWorkflowResult> {
  const maxParallelBatches = Math.max(1, input.maxParallelBatches ?? 2);
  const progress: EvaluationProgress = {
    stage: 'planning',
    completedBatches: 0,
    totalBatches: 0,
    predictedRows: input.carried?.predictedRows ?? 0,
    cachedRows: input.carried?.cachedRows ?? 0,
  };
  setHandler(evaluationProgressQuery, () => progress);

  const plan =
    input.carried?.plan ??
    (await pipeline.planEvaluation({
      evaluationRef: input.evaluationRef,
      ragModelRefs: input.ragModelRefs,
      batchSize: input.batchSize ?? defaultBatchSize,
      evaluationRunId: workflowInfo().workflowId,
    }));
  const modelCount = plan.models.length;
  const totalTasks = plan.batchCount * modelCount;
  progress.totalBatches = totalTasks;
  progress.completedBatches = input.carried?.nextBatchIndex ?? 0;
  progress.stage = 'predicting';

  // Tasks interleave models batch by batch, so champion and challenger advance together.
  const firstTask = input.carried?.nextBatchIndex ?? 0;
  const lastTaskThisRun = Math.min(totalTasks, firstTask + batchesPerRun);
  let nextTask = firstTask;
  const fresh = input.fresh ?? false;

  async function runTask(task: number): Promise<void> {
    const batchIndex = Math.floor(task / modelCount);
    const modelIndex = task % modelCount;
    const predicted = await gpu.predictBatch({ plan, modelIndex, batchIndex, fresh });
    await pipeline.scoreBatch({ plan, modelIndex, batchIndex });
    progress.predictedRows += predicted.predictedRows;
    progress.cachedRows += predicted.cachedRows;
    progress.completedBatches += 1;
  }

  async function lane(): Promise<void> {
    while (nextTask < lastTaskThisRun) {
      const task = nextTask;
      nextTask += 1;
      await runTask(task);
    }
  }
  await Promise.all(Array.from({ length: Math.min(maxParallelBatches, lastTaskThisRun - firstTask) }, lane));

  if (lastTaskThisRun < totalTasks) {
    // Every task below lastTaskThisRun has finished (the lanes drained), so the next run starts there.
    await continueAsNew<typeof evaluateWorkflow>({
      ...input,
      carried: {
        plan,
        nextBatchIndex: lastTaskThisRun,
        predictedRows: progress.predictedRows,
        cachedRows: progress.cachedRows,
      },
    });
  }

  progress.stage = 'summarizing';
  const results = await pipeline.summarizeEvaluation({ plan, workflowId: workflowInfo().workflowId });
  progress.stage = 'done';
  return {
    evaluationRunId: plan.evaluationRunId,
    datasetRef: plan.datasetRef,
    rowCount: plan.rowCount,
    predictedRows: progress.predictedRows,
    cachedRows: progress.cachedRows,
    results,
  };
}
