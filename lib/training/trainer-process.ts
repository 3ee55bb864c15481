import { spawn } from 'node:child_process';
import { trainerEnvironment } from '../common/child-environment';
import readline from 'node:readline';
import { projectRoot } from '../config/config';

/** The trainer's stdout protocol: one JSON object per line (trainer/finetune.py). */
export type TrainerEvent =
  | {
      event: 'progress';
      step: number;
      total_steps: number;
      loss: number;
      learning_rate: number;
      tokens_per_second: number;
    }
  | { event: 'checkpoint'; step: number; path: string }
  | {
      event: 'done';
      final_loss: number;
      export_check: { max_abs_logit_diff: number };
      onnx_dir: string;
      hf_dir: string;
      train_seconds: number;
      tokens_per_second: number;
    }
  | { event: 'error'; kind: string; message: string }
  | { event: 'cancelled' };

export type TrainerDone = Extract<TrainerEvent, { event: 'done' }>;

/** Bad input the trainer rejected (exit code 2): retrying cannot help. */
export class TrainerInputError extends Error {
  readonly retryable = false;
  readonly type = 'WeftInvalidInput';
  constructor(message: string) {
    super(message);
    this.name = 'TrainerInputError';
  }
}

/** The trainer died (killed, out of memory, crashed): a retry on a healthy worker may succeed. */
export class TrainerCrashedError extends Error {
  readonly retryable = true;
  constructor(message: string) {
    super(message);
    this.name = 'TrainerCrashedError';
  }
}

export class TrainerCancelledError extends Error {
  readonly retryable = false;
  constructor() {
    super('Training was cancelled; the trainer stopped.');
    this.name = 'TrainerCancelledError';
  }
}

/** Hyper-parameters a pipeline may override, mapped to the trainer's flags. */
export const trainerFlags: Record<string, string> = {
  epochs: '--epochs',
  max_steps: '--max-steps',
  learning_rate: '--learning-rate',
  batch_size: '--batch-size',
  lora_rank: '--lora-rank',
  lora_alpha: '--lora-alpha',
  lora_dropout: '--lora-dropout',
  checkpoint_every: '--checkpoint-every',
  max_length: '--max-length',
  warmup_steps: '--warmup-steps',
  seed: '--seed',
  lora_top_layers: '--lora-top-layers',
};

export interface TrainerRunOptions {
  python: string;
  baseModelDirectory: string;
  trainingFile: string;
  outputDirectory: string;
  config: 'demo-cpu' | 'gpu';
  hyperParameters: Record<string, number>;
  resumeFrom?: string;
  /** `auto`, `cpu`, `cuda` or `cuda:<n>`. */
  device?: string;
  onEvent(event: TrainerEvent): void;
  /** Aborting sends SIGTERM; the trainer stops at the next step boundary and exits 143. */
  signal?: AbortSignal;
}

/** Runs `python -m trainer.finetune` and resolves with its `done` event, or rejects with a classified error. */
export function runTrainer(options: TrainerRunOptions): Promise<TrainerDone> {
  const unknown = Object.keys(options.hyperParameters).filter((name) => !(name in trainerFlags));
  if (unknown.length > 0) {
    return Promise.reject(
      new TrainerInputError(
        `Unknown hyper-parameter(s) ${unknown.join(', ')}; allowed: ${Object.keys(trainerFlags).join(', ')}.`,
      ),
    );
  }
  const args = [
    '-m',
    'trainer.finetune',
    '--base',
    options.baseModelDirectory,
    '--train',
    options.trainingFile,
    '--out',
    options.outputDirectory,
    '--config',
    options.config,
    '--device',
    options.device ?? 'auto',
    ...(options.resumeFrom ? ['--resume-from', options.resumeFrom] : []),
    ...Object.entries(options.hyperParameters).flatMap(([name, value]) => [trainerFlags[name], String(value)]),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(options.python, args, {
      cwd: projectRoot,
      env: trainerEnvironment(process.env, { HF_HUB_OFFLINE: '1', PYTHONUNBUFFERED: '1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let done: TrainerDone | undefined;
    let inputError: string | undefined;
    const stderrTail: string[] = [];
    let cancelled = false;
    const onAbort = () => {
      cancelled = true;
      child.kill('SIGTERM');
      // A trainer stuck in a long step still goes: SIGKILL after a grace period.
      setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let event: TrainerEvent;
      try {
        event = JSON.parse(line) as TrainerEvent;
      } catch {
        return; // A library printed plain text on stdout; the protocol lines are JSON.
      }
      if (event.event === 'done') done = event;
      if (event.event === 'error') inputError = event.message;
      options.onEvent(event);
    });
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    });
    child.once('error', (error) =>
      reject(
        new TrainerCrashedError(
          `Could not start the trainer with ${options.python}: ${error.message}. Run 'bash scripts/setup.sh'.`,
        ),
      ),
    );
    child.once('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (cancelled) return reject(new TrainerCancelledError());
      if (code === 0 && done) return resolve(done);
      if (code === 2)
        return reject(new TrainerInputError(inputError ?? `The trainer rejected its input: ${stderrTail.join('\n')}`));
      reject(
        new TrainerCrashedError(
          `The trainer exited with ${signal ?? `code ${code}`}${signal === 'SIGKILL' || code === 137 ? ' (killed — out of memory?)' : ''}; last output:\n${stderrTail.slice(-8).join('\n')}`,
        ),
      );
    });
  });
}
