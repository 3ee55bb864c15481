import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { LineageStore } from '../lib/lineage';
import { ragMessages } from '../lib/inference/rag-prompt';
import { runTrainer, type TrainerDone } from '../lib/training/trainer-process';
import type { FineTuneInput, FineTuneResult, LifecycleGpuActivities } from '../workflows/contracts/lifecycle';
import { atBoundary, invalidInput } from './boundary';

export interface FineTuneDependencies {
  store: LineageStore;
  /** Where run folders (checkpoints, merged model, ONNX export) go: a volume all gpu workers share. */
  modelsDirectory: string;
  python: string;
  /** `auto`, `cpu`, `cuda` or `cuda:<n>`: the gpu worker's device. */
  device: string;
  /** Downloads a model artifact (once) and returns its local folder. */
  materializeModel(artifactRef: string): Promise<string>;
}

/** What the activity heartbeats: enough to resume from the last checkpoint after a crash. */
export interface FineTuneHeartbeat {
  step: number;
  totalSteps: number;
  loss: number | null;
  checkpoint: string | null;
}

/** A folder name from the run key (workflow id), readable and free of path separators. */
function runFolderName(runKey: string): string {
  return runKey.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 180);
}

/** Exports a training Dataset as the trainer's chat rows, in exactly the prompt format RagModel uses. */
async function exportTrainingRows(store: LineageStore, datasetRef: string, file: string): Promise<number> {
  const rows = await store.datasets.rows(datasetRef);
  if (rows.length === 0) throw invalidInput(`The training dataset ${datasetRef} has no rows.`);
  const lines = rows.map((row, index) => {
    const question = row.question;
    const answer = row.answer;
    const context = row.context ?? (Array.isArray(row.contexts) ? (row.contexts as unknown[]).join('\n\n') : undefined);
    const missing = [
      typeof question === 'string' && question.trim() ? null : 'question',
      typeof answer === 'string' && answer.trim() ? null : 'answer',
      typeof context === 'string' && context.trim() ? null : 'context',
    ].filter(Boolean);
    if (missing.length > 0) {
      throw invalidInput(
        `Row ${index} of the training dataset ${datasetRef} is missing ${missing.join(', ')}: ` +
          'every training row needs a question, an answer and the context passage the answer comes from.',
      );
    }
    const messages = [...ragMessages(question as string, [context as string]), { role: 'assistant', content: answer }];
    return JSON.stringify({ messages });
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, `${lines.join('\n')}\n`);
  fs.renameSync(`${file}.tmp`, file);
  return rows.length;
}

/** The newest complete checkpoint in a run folder (the trainer writes them atomically). */
function latestCheckpoint(outputDirectory: string): string | null {
  const directory = path.join(outputDirectory, 'checkpoints');
  if (!fs.existsSync(directory)) return null;
  const steps = fs
    .readdirSync(directory)
    .map((name) => /^step-(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => Number(match[1]))
    .sort((left, right) => right - left);
  return steps.length > 0 ? path.join(directory, `step-${steps[0]}`) : null;
}

export function createFineTuneActivities(dependencies: FineTuneDependencies): LifecycleGpuActivities {
  return atBoundary<LifecycleGpuActivities>({
    async fineTune(input: FineTuneInput): Promise<FineTuneResult> {
      const context = Context.current();
      const outputDirectory = path.join(dependencies.modelsDirectory, 'runs', runFolderName(input.runKey));
      const resultFile = path.join(outputDirectory, 'result.json');
      if (fs.existsSync(resultFile)) {
        // Finished before a crash lost the activity's completion: return the same model, don't train again.
        return JSON.parse(fs.readFileSync(resultFile, 'utf8')) as FineTuneResult;
      }
      const baseDirectory = await dependencies.materializeModel(input.baseModelRef);
      // Model artifacts hold the ONNX export at the root and the Hugging Face weights under hf/.
      const hasWeights = (folder: string) =>
        fs.existsSync(path.join(folder, 'config.json')) &&
        // One file (folders from before weight sharing) or per-layer shards named by the index (trainer/weight_files.py).
        ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin'].some((file) =>
          fs.existsSync(path.join(folder, file)),
        );
      const hfDirectory = [path.join(baseDirectory, 'hf'), baseDirectory].find(hasWeights);
      if (!hfDirectory) {
        throw invalidInput(
          `The base model ${input.baseModelRef} has no Hugging Face weights to fine-tune (hf/config.json and ` +
            'hf/model.safetensors, or hf/model.safetensors.index.json and its shards): log the model artifact with ' +
            'its HF folder under hf/ next to the ONNX files.',
        );
      }
      const trainingFile = path.join(outputDirectory, 'train.jsonl');
      await exportTrainingRows(dependencies.store, input.trainingDatasetRef, trainingFile);

      const previous = context.info.heartbeatDetails as FineTuneHeartbeat | undefined;
      const resumeFrom =
        previous?.checkpoint && fs.existsSync(previous.checkpoint)
          ? previous.checkpoint
          : latestCheckpoint(outputDirectory);
      const resumedFromStep = resumeFrom ? Number(/step-(\d+)$/.exec(resumeFrom)?.[1] ?? 0) : 0;
      if (resumeFrom)
        context.log.info('Resuming fine-tune from checkpoint', { checkpoint: resumeFrom, step: resumedFromStep });

      const heartbeat: FineTuneHeartbeat = { step: resumedFromStep, totalSteps: 0, loss: null, checkpoint: resumeFrom };
      context.heartbeat(heartbeat);
      const abort = new AbortController();
      context.cancelled.catch(() => abort.abort());
      // The trainer is silent while it imports torch and loads the model; keep the heartbeat alive meanwhile,
      // so only a dead worker (not a slow start) trips the heartbeat timeout.
      const keepAlive = setInterval(() => context.heartbeat({ ...heartbeat }), 5000);
      let done: TrainerDone;
      try {
        done = await runTrainer({
          python: dependencies.python,
          baseModelDirectory: hfDirectory,
          trainingFile,
          outputDirectory,
          config: input.trainingConfig,
          hyperParameters: input.hyperParameters,
          resumeFrom: resumeFrom ?? undefined,
          device: dependencies.device,
          signal: abort.signal,
          onEvent: (event) => {
            if (event.event === 'progress') {
              heartbeat.step = event.step;
              heartbeat.totalSteps = event.total_steps;
              heartbeat.loss = event.loss;
            } else if (event.event === 'checkpoint') {
              heartbeat.checkpoint = event.path;
              heartbeat.step = event.step;
            } else return;
            context.heartbeat({ ...heartbeat });
          },
        });
      } catch (error) {
        // Cancellation surfaces as Temporal's own CancelledFailure, once the trainer has stopped.
        if (abort.signal.aborted) await context.cancelled;
        throw error;
      } finally {
        clearInterval(keepAlive);
      }
      const result: FineTuneResult = {
        modelDirectory: outputDirectory,
        summary: {
          steps: heartbeat.step,
          finalLoss: done.final_loss,
          tokensPerSecond: done.tokens_per_second,
          trainSeconds: done.train_seconds,
          resumedFromStep,
          maxAbsLogitDifference: done.export_check.max_abs_logit_diff,
        },
      };
      fs.writeFileSync(`${resultFile}.tmp`, JSON.stringify(result));
      fs.renameSync(`${resultFile}.tmp`, resultFile);
      return result;
    },
  });
}
