import type { Command } from 'commander';
import { smokeProgressQuery, type SmokePipelineResult } from '../../workflows/contracts/smoke';
import { taskQueues } from '../../workflows/contracts/task-queues';
import { formatTable, printJson, progressBar } from '../output';
import { resultOrRunFailure } from '../run-failure';
import { connectClient } from '../temporal-client';
import { withStack } from './stack-commands';

export interface SmokeRunOptions {
  message: string;
  pauseMilliseconds: number;
  workflowId?: string;
  json?: boolean;
}

/** Starts the smoke pipeline on a ready stack and waits for its result, drawing progress on stderr. */
export async function runSmoke(
  options: SmokeRunOptions,
): Promise<{ workflowId: string; result: SmokePipelineResult; ui?: string }> {
  return withStack({ quiet: options.json }, async (stack) => {
    const { client, close } = await connectClient(stack.address);
    try {
      const workflowId = options.workflowId ?? `smoke-${Date.now().toString(36)}`;
      const handle = await client.workflow.start('smokePipelineWorkflow', {
        taskQueue: taskQueues.pipeline,
        workflowId,
        args: [{ message: options.message, pauseMilliseconds: options.pauseMilliseconds }],
      });
      if (!options.json) process.stderr.write(`Started ${workflowId}\n`);
      const ticker = options.json
        ? undefined
        : setInterval(() => {
            handle
              .query(smokeProgressQuery)
              .then((progress) =>
                process.stderr.write(
                  `\r${progressBar(progress.completedSteps / progress.totalSteps)} ${progress.stage.padEnd(10)}`,
                ),
              )
              .catch(() => undefined);
          }, 500);
      try {
        const result = (await resultOrRunFailure(workflowId, handle.result())) as SmokePipelineResult;
        if (!options.json) process.stderr.write(`\r${progressBar(1)} done      \n`);
        const ui = stack.uiUrl ? `${stack.uiUrl}/namespaces/${stack.namespace}/workflows/${workflowId}` : undefined;
        return { workflowId, result, ui };
      } finally {
        if (ticker) clearInterval(ticker);
      }
    } finally {
      await close();
    }
  });
}

export function printSmokeResult(run: { workflowId: string; result: SmokePipelineResult; ui?: string }): void {
  process.stdout.write(
    `${formatTable(
      ['step', 'task queue', 'worker', 'summary'],
      run.result.steps.map((step) => [step.step, step.taskQueue, step.worker, step.summary]),
    )}\n\nWorkflow ${run.workflowId} completed.${run.ui ? `\nTemporal UI: ${run.ui}` : ''}\n`,
  );
}

export function registerRunCommands(program: Command): Command {
  const run = program.command('run').description('Start a pipeline run');
  run
    .command('smoke')
    .description('Run the smoke pipeline: one real step on each task queue (weft-pipeline, weft-gpu, weft-registry)')
    .option('--message <text>', 'text carried through the steps', 'hello from weft')
    .option('--pause-ms <milliseconds>', 'durable timer between the gpu and registry steps', '0')
    .option('--id <workflowId>', 'workflow id (default: smoke-<time>)')
    .option('--json', 'print the result as JSON')
    .action(async (options: { message: string; pauseMs: string; id?: string; json?: boolean }) => {
      const pauseMilliseconds = Number(options.pauseMs);
      if (!Number.isInteger(pauseMilliseconds) || pauseMilliseconds < 0) {
        throw new Error(`--pause-ms must be a whole number of milliseconds ≥ 0, got '${options.pauseMs}'.`);
      }
      const outcome = await runSmoke({
        message: options.message,
        pauseMilliseconds,
        workflowId: options.id,
        json: options.json,
      });
      if (options.json) printJson(outcome);
      else printSmokeResult(outcome);
    });
  return run;
}
