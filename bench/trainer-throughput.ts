/**
 * Trainer throughput: a live LoRA fine-tune on this machine's CPU (demo-cpu config, the setup-built base
 * model, the demo training rows), printed beside the H200 run of the `gpu` config recorded by the
 * device tool (bench/results/h200-finetune-gpu-config.jsonl: the trainer's own progress lines).
 *
 *   npx tsx bench/trainer-throughput.ts [--max-steps 20]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, projectRoot } from '../lib/config/config';
import { runTrainer, type TrainerDone } from '../lib/training/trainer-process';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

async function main(): Promise<void> {
  const config = parseConfig(process.env);
  const maxSteps = flag('max-steps', 20);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-trainer-'));
  const trainingFile = path.join(work, 'train.jsonl');
  execFileSync(
    config.python,
    [
      '-m',
      'trainer.make_chat_dataset',
      '--qa',
      'data/climate/qa-train.jsonl',
      '--corpus',
      'data/climate/corpus.jsonl',
      '--out',
      trainingFile,
    ],
    { cwd: projectRoot, stdio: 'ignore' },
  );
  const started = performance.now();
  const done: TrainerDone = await runTrainer({
    python: config.python,
    baseModelDirectory: path.join(config.modelsDir, 'base-chat', 'hf'),
    trainingFile,
    outputDirectory: path.join(work, 'run'),
    config: 'demo-cpu',
    hyperParameters: { max_steps: maxSteps, checkpoint_every: maxSteps },
    device: 'cpu',
    onEvent: () => undefined,
  });
  const wallSeconds = (performance.now() - started) / 1000;

  const recorded = path.join(__dirname, 'results', 'h200-finetune-gpu-config.jsonl');
  const h200 = fs
    .readFileSync(recorded, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(
      (line) =>
        JSON.parse(line) as { event: string; tokens_per_second?: number; train_seconds?: number; steps?: number },
    )
    .find((event) => event.event === 'done');

  console.log(`LoRA fine-tune throughput (training tokens/s, as the trainer reports it)`);
  console.log(
    `this machine, CPU (${os.cpus().length} cores), demo-cpu, ${maxSteps} steps: ${done.tokens_per_second.toFixed(0)} tokens/s ` +
      `(train ${done.train_seconds.toFixed(1)} s, wall with merge + ONNX export + check ${wallSeconds.toFixed(1)} s)`,
  );
  if (h200?.tokens_per_second) {
    console.log(
      `H200, gpu config (bf16, batch 32), ${h200.steps} steps, recorded by the device run: ${h200.tokens_per_second.toFixed(0)} tokens/s ` +
        `(train ${h200.train_seconds?.toFixed(1)} s)`,
    );
    console.log(`H200 / this CPU: ${(h200.tokens_per_second / done.tokens_per_second).toFixed(1)}x`);
  }
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
