/** Task queues: Temporal routes each activity to the worker kind that can run it. */
export const taskQueues = {
  /** Orchestrator workers: all workflows and light activities (integrate, scoring, gate statistics). */
  pipeline: 'weft-pipeline',
  /** GPU (or CPU inference host) workers: fine-tune and batched predict. */
  gpu: 'weft-gpu',
  /** Registry workers: artifact logging, registry links and alias moves. */
  registry: 'weft-registry',
} as const;

export type TaskQueueName = (typeof taskQueues)[keyof typeof taskQueues];
