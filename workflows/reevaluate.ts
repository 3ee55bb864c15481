import { executeChild, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { lightActivity } from './contracts/activity-options';
import type { LifecyclePipelineActivities } from './contracts/lifecycle';
import type {
  ReevaluateWorkflowInput,
  ReevaluateWorkflowResult,
  ReevaluationActivities,
} from './contracts/reevaluation';
import {
  weftAppSearchAttribute,
  weftRegressionSearchAttribute,
  weftScoreSearchAttribute,
  weftStageSearchAttribute,
} from './contracts/search-attributes';
import { taskQueues } from './contracts/task-queues';
import { evaluateWorkflow } from './evaluate';

const pipeline = proxyActivities<ReevaluationActivities & Pick<LifecyclePipelineActivities, 'resolveChampion'>>({
  ...lightActivity,
  taskQueue: taskQueues.pipeline,
});

/**
 * Nightly re-evaluation (started by a Temporal Schedule): evaluates the app's `production` RagModel on
 * the latest dataset version and flags a regression against the score accepted when it was published.
 */
export async function reevaluateWorkflow(input: ReevaluateWorkflowInput): Promise<ReevaluateWorkflowResult> {
  const { workflowId } = workflowInfo();
  upsertSearchAttributes([
    { key: weftAppSearchAttribute, value: input.app },
    { key: weftStageSearchAttribute, value: 'evaluate' },
  ]);
  const champion = await pipeline.resolveChampion({ app: input.app });
  if (champion.productionRef === null) {
    upsertSearchAttributes([{ key: weftStageSearchAttribute, value: 'done' }]);
    return { status: 'no-production', productionRagModelRef: null, evaluationRef: null, alerted: false };
  }
  const refreshed = await pipeline.refreshEvaluation({ evaluationRef: input.evaluationRef });
  const evaluation = await executeChild(evaluateWorkflow, {
    workflowId: `${workflowId}/evaluate`,
    taskQueue: taskQueues.pipeline,
    args: [
      {
        evaluationRef: refreshed.evaluationRef,
        ragModelRefs: [champion.productionRef],
        batchSize: input.batchSize,
        maxParallelBatches: input.maxParallelBatches,
      },
    ],
  });
  const check = await pipeline.checkRegression({
    app: input.app,
    productionRagModelRef: champion.productionRef,
    evaluationResultRef: evaluation.results[0].evaluationResultRef,
    metric: input.metric,
    threshold: input.regressionThreshold,
  });
  upsertSearchAttributes([
    { key: weftRegressionSearchAttribute, value: check.regression },
    { key: weftScoreSearchAttribute, value: check.currentMean },
    { key: weftStageSearchAttribute, value: 'done' },
  ]);
  const alerted = check.regression ? await pipeline.sendAlert({ app: input.app, workflowId, check }) : false;
  return {
    status: 'evaluated',
    productionRagModelRef: champion.productionRef,
    evaluationRef: refreshed.evaluationRef,
    evaluation,
    check,
    alerted,
  };
}
