import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type {
  SmokeGpuActivities,
  SmokePipelineActivities,
  SmokeRegistryActivities,
} from '../workflows/contracts/smoke';
import { taskQueues } from '../workflows/contracts/task-queues';

export interface SmokeActivityDependencies {
  /** `host:pid` of this worker, recorded in each step so a user sees which process ran it. */
  workerName: string;
}

export function createSmokePipelineActivities(dependencies: SmokeActivityDependencies): SmokePipelineActivities {
  return {
    async digestMessage(message) {
      const digest = createHash('sha256').update(message, 'utf8').digest('hex');
      return {
        step: 'digest',
        taskQueue: taskQueues.pipeline,
        worker: dependencies.workerName,
        summary: `sha256 ${digest.slice(0, 12)}… of ${Buffer.byteLength(message)} bytes`,
        digest,
      };
    },
  };
}

/** Dimension of the hashed character-trigram vector the gpu smoke step computes. */
const smokeVectorDimension = 256;

export function createSmokeGpuActivities(dependencies: SmokeActivityDependencies): SmokeGpuActivities {
  return {
    async embedMessage(message) {
      // Feature hashing of character trigrams: a real, tiny vector computation that needs no model,
      // so the smoke pipeline proves the gpu queue's wiring before any model is built.
      const vector = new Float64Array(smokeVectorDimension);
      const text = ` ${message.toLowerCase()} `;
      for (let index = 0; index + 3 <= text.length; index += 1) {
        const bucket = createHash('sha1')
          .update(text.slice(index, index + 3))
          .digest()
          .readUInt32BE(0);
        vector[bucket % smokeVectorDimension] += 1;
      }
      const vectorNorm = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
      return {
        step: 'embed',
        taskQueue: taskQueues.gpu,
        worker: dependencies.workerName,
        summary: `hashed trigram vector, dimension ${smokeVectorDimension}, norm ${vectorNorm.toFixed(3)}`,
        vectorNorm,
      };
    },
  };
}

export interface SmokeRegistryDependencies extends SmokeActivityDependencies {
  /** WEFT_HOME: the record file lives there. */
  home: string;
}

interface SmokeRunRecord {
  workflowId: string;
  digest: string;
  vectorNorm: number;
  recordedAt: string;
}

export function createSmokeRegistryActivities(dependencies: SmokeRegistryDependencies): SmokeRegistryActivities {
  const recordPath = path.join(dependencies.home, 'smoke-runs.jsonl');
  return {
    async recordSmokeRun(input) {
      await fs.mkdir(dependencies.home, { recursive: true });
      const existing = await fs.readFile(recordPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return '';
        throw error;
      });
      const alreadyRecorded = existing
        .split('\n')
        .filter((line) => line.trim() !== '')
        .some((line) => (JSON.parse(line) as SmokeRunRecord).workflowId === input.workflowId);
      // Idempotent by workflow id: a retried activity must not write a second record.
      if (!alreadyRecorded) {
        const record: SmokeRunRecord = { ...input, recordedAt: new Date().toISOString() };
        await fs.appendFile(recordPath, `${JSON.stringify(record)}\n`, 'utf8');
      }
      return {
        step: 'record',
        taskQueue: taskQueues.registry,
        worker: dependencies.workerName,
        summary: alreadyRecorded ? `already recorded in ${recordPath}` : `recorded in ${recordPath}`,
        recordPath,
      };
    },
  };
}
