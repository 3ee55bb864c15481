import type { ActivityOptions } from '@temporalio/common';
import { errorTypes } from './errors';

const nonRetryableErrorTypes = Object.values(errorTypes);

/** Quick, local work on the pipeline queue: digests, scoring, statistics. */
export const lightActivity: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 5, nonRetryableErrorTypes },
};

/**
 * Registry writes: small and idempotent, so they retry for a long time — a registry worker that is
 * down for a while must not fail the pipeline.
 */
export const registryActivity: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '1 hour',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes },
};

/**
 * Inference batches on the gpu queue. The heartbeat timeout is what notices a killed gpu worker:
 * the batch is retried on another worker within that time instead of waiting for startToClose.
 */
export const inferenceActivity: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes },
};

/**
 * Fine-tuning: long, heartbeats each trainer progress line, resumes from its checkpoint on retry. The
 * heartbeat timeout is how fast a killed gpu worker is noticed; the trainer reports every step, so
 * 30 seconds of silence means the worker is gone.
 */
export const trainingActivity: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', maximumInterval: '2 minutes', maximumAttempts: 5, nonRetryableErrorTypes },
};

/**
 * Publishing into a W&B server: uploads can be large (model weights) and the server can be down for a while, so
 * one attempt may run long (heartbeating every 5 s: a dead worker is noticed in 30 s) and attempts go on for a day, backing off to one every 2 minutes —
 * the run waits for W&B instead of failing. 401/403 are non-retryable (the activity says which key/entity).
 */
export const wandbPublishActivity: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '2 seconds', maximumInterval: '2 minutes', nonRetryableErrorTypes },
};
