import { defineQuery } from '@temporalio/workflow';

/**
 * The smoke pipeline proves the wiring: one real, small step on each of the three task queues,
 * with a durable timer between them so a server restart mid-run can be observed.
 */
export interface SmokePipelineInput {
  /** Text the pipeline carries through its steps. */
  message: string;
  /** Durable pause between the gpu and registry steps, in milliseconds (lets tests restart the server mid-run). */
  pauseMilliseconds?: number;
}

export interface SmokeStepRecord {
  step: 'digest' | 'embed' | 'record';
  taskQueue: string;
  /** Host and process id of the worker that ran the step. */
  worker: string;
  summary: string;
}

export interface SmokePipelineResult {
  digest: string;
  vectorNorm: number;
  recordPath: string;
  steps: SmokeStepRecord[];
}

export interface SmokeProgress {
  stage: 'starting' | 'digest' | 'embed' | 'pause' | 'record' | 'done';
  completedSteps: number;
  totalSteps: number;
  steps: SmokeStepRecord[];
}

export const smokeProgressQuery = defineQuery<SmokeProgress>('progress');

/** Activities on `weft-pipeline`. */
export interface SmokePipelineActivities {
  digestMessage(message: string): Promise<SmokeStepRecord & { digest: string }>;
}

/** Activities on `weft-gpu`. */
export interface SmokeGpuActivities {
  embedMessage(message: string): Promise<SmokeStepRecord & { vectorNorm: number }>;
}

/** Activities on `weft-registry`. */
export interface SmokeRegistryActivities {
  recordSmokeRun(input: {
    workflowId: string;
    digest: string;
    vectorNorm: number;
  }): Promise<SmokeStepRecord & { recordPath: string }>;
}
