import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  WandbAliasConflictError,
  type PublishCheckpoint,
  type PublishProgress,
  type WandbPublisher,
} from '../lib/wandb-remote';
import { errorTypes } from '../workflows/contracts/errors';
import type { LifecycleWandbActivities } from '../workflows/contracts/lifecycle';
import { atBoundary, invalidInput } from './boundary';

export interface WandbPublishDependencies {
  /** Undefined when W&B is not configured: every activity returns `{published: false}`. */
  publisher: WandbPublisher | undefined;
}

/**
 * Runs a publication with the activity's progress: what earlier attempts created remotely comes back from the
 * heartbeat details, every remote write heartbeats the checkpoint (a retry resumes instead of repeating), and a
 * heartbeat every 5 s while one large upload runs, so only a dead worker trips the heartbeat timeout.
 */
export async function withPublishProgress<T>(body: (progress: PublishProgress) => Promise<T>): Promise<T> {
  const context = Context.current();
  const previous = context.info.heartbeatDetails as PublishCheckpoint | undefined;
  const checkpoint: PublishCheckpoint = {
    artifactIds: { ...previous?.artifactIds },
    sentCallBatches: { ...previous?.sentCallBatches },
  };
  context.heartbeat(checkpoint);
  const keepAlive = setInterval(() => context.heartbeat({ ...checkpoint }), 5000);
  try {
    return await body({ checkpoint, onProgress: (current) => context.heartbeat({ ...current }) });
  } finally {
    clearInterval(keepAlive);
  }
}

/** A lost race on the remote `production`: the same failure type as a local one, so the run ends `superseded`. */
export function toAliasConflictFailure(error: unknown): unknown {
  if (error instanceof WandbAliasConflictError) {
    return ApplicationFailure.nonRetryable(error.message, errorTypes.aliasConflict);
  }
  return error;
}

export function createWandbPublishActivities({ publisher }: WandbPublishDependencies): LifecycleWandbActivities {
  return atBoundary<LifecycleWandbActivities>({
    async publishChatModelToWandb(input) {
      if (!publisher) return { published: false, refs: {} };
      const refs = await withPublishProgress((progress) =>
        publisher.publishChatModel(
          { app: input.app, localRegistryRef: input.registryRef, workflowId: input.workflowId },
          progress,
        ),
      );
      return { published: true, refs };
    },

    async publishEvaluationToWandb(input) {
      if (!publisher) return { published: false, refs: {} };
      const [first] = input.evaluationResultRefs;
      if (!first) throw invalidInput('publishEvaluationToWandb needs the evaluation’s EvaluationResult refs.');
      const wandbRunId = await publisher.evaluationRunOf(first);
      const refs = await withPublishProgress((progress) =>
        publisher.publishEvaluation({ wandbRunId, workflowId: input.workflowId }, progress),
      );
      return { published: true, refs };
    },
  });
}
