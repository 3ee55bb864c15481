import type { Command } from 'commander';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { evaluationProgressQuery, type EvaluationSummary } from '../../workflows/contracts/evaluation';
import {
  approveUpdate,
  differingLifecycleInputs,
  lifecycleProgressQuery,
  lifecycleWorkflowId,
  rejectUpdate,
  type GatePolicy,
  type LifecyclePipelineInput,
  type LifecyclePipelineResult,
  type LifecycleProgress,
} from '../../workflows/contracts/lifecycle';
import { taskQueues } from '../../workflows/contracts/task-queues';
import type { lifecyclePipelineWorkflow } from '../../workflows';
import { formatTable, printJson, progressBar } from '../output';
import { describeRunFailure, formatRunFailure, RunFailedError, resultOrRunFailure } from '../run-failure';
import { connectClient } from '../temporal-client';
import { withStack } from './stack-commands';
import { loadConfig } from '../../lib/config/config';
import { uiLinks } from '../../lib/weave-server/ui/ui-links';

/** Repeatable `--hp name=value` flags into a record of numbers. */
function collectHyperParameter(value: string, previous: Record<string, number>): Record<string, number> {
  const match = /^([a-z_]+)=(.+)$/.exec(value);
  const number = match ? Number(match[2]) : Number.NaN;
  if (!match || !Number.isFinite(number)) {
    throw new Error(`--hp takes name=number (e.g. --hp max_steps=40), got '${value}'.`);
  }
  return { ...previous, [match[1]]: number };
}

function positiveInteger(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} must be a whole number ≥ 1, got '${text}'.`);
  return value;
}

const gateMetrics: GatePolicy['metric'][] = ['exact_match', 'f1', 'hit@5', 'mrr', 'groundedness'];

function gateMetric(text: string): GatePolicy['metric'] {
  if (!(gateMetrics as string[]).includes(text)) {
    throw new Error(`--gate-metric must be one of ${gateMetrics.join(', ')}, got '${text}'.`);
  }
  return text as GatePolicy['metric'];
}

/** Live progress of a lifecycle run on stderr until it finishes; returns its result. */
export async function watchLifecycle(
  handle: WorkflowHandle<typeof lifecyclePipelineWorkflow>,
  quiet: boolean,
): Promise<LifecyclePipelineResult> {
  let lastLine = '';
  const ticker = quiet
    ? undefined
    : setInterval(() => {
        void describeProgress(handle)
          .then((progress) => {
            const line = `${progressBar(progress.percent / 100)} ${progress.stage}${progress.detail ? ` — ${progress.detail}` : ''}`;
            if (process.stderr.isTTY) {
              if (line !== lastLine) process.stderr.write(`\r\x1b[2K${line.slice(0, 160)}`);
            } else if (!lastLine.includes(` ${progress.stage}`)) {
              // Logs and pipes get one line per stage, not a redrawn bar.
              process.stderr.write(`${line}\n`);
            }
            lastLine = line;
          })
          .catch(() => undefined);
      }, 1000);
  try {
    return await resultOrRunFailure(handle.workflowId, handle.result());
  } finally {
    if (ticker) {
      clearInterval(ticker);
      if (process.stderr.isTTY) process.stderr.write('\n');
    }
  }
}

/** The workflow's progress query plus what the running activity last heartbeated (training step, loss). */
async function describeProgress(handle: WorkflowHandle): Promise<LifecycleProgress> {
  const progress = await handle.query(lifecycleProgressQuery);
  if (progress.stage === 'fine-tune') {
    const description = await handle.describe();
    const pending = description.raw.pendingActivities?.[0];
    const payload = pending?.heartbeatDetails?.payloads?.[0];
    if (payload) {
      const beat = defaultPayloadConverter.fromPayload<{ step: number; totalSteps: number; loss: number | null }>(
        payload,
      );
      if (beat.totalSteps > 0) {
        progress.percent = 5 + (40 * beat.step) / beat.totalSteps;
        progress.detail = `step ${beat.step}/${beat.totalSteps}${beat.loss === null ? '' : `, loss ${beat.loss.toFixed(3)}`}`;
      }
    }
  }
  if (progress.stage === 'evaluate') {
    // The evaluation runs as a child workflow; its own progress query has the batch counts.
    const child = handle.client.getHandle(`${handle.workflowId}/evaluate`);
    const evaluation = await child.query(evaluationProgressQuery).catch(() => undefined);
    if (evaluation && evaluation.totalBatches > 0) {
      progress.percent = 55 + (35 * evaluation.completedBatches) / evaluation.totalBatches;
      progress.detail = `${evaluation.completedBatches}/${evaluation.totalBatches} batches, ${evaluation.predictedRows} rows predicted, ${evaluation.cachedRows} cached`;
    }
  }
  return progress;
}

export function formatScores(summaries: { label: string; summary: EvaluationSummary }[]): string {
  const names = [...new Set(summaries.flatMap((entry) => Object.keys(entry.summary)))];
  return formatTable(
    ['score', ...summaries.map((entry) => entry.label)],
    names.map((name) => [
      name,
      ...summaries.map((entry) => {
        const value = entry.summary[name as keyof EvaluationSummary];
        return value ? `${value.mean.toFixed(3)} [${value.ciLow.toFixed(3)}, ${value.ciHigh.toFixed(3)}]` : '';
      }),
    ]),
  );
}

export function printLifecycleResult(workflowId: string, result: LifecyclePipelineResult, ui?: string): void {
  const labelled = result.evaluation.results.map((entry) => ({
    label: entry.label === 'champion' ? 'before (champion)' : 'after (challenger)',
    summary: entry.summary,
  }));
  process.stdout.write(
    `${formatScores(labelled.reverse())}\n\n` +
      `Gate: ${result.gate.decision.toUpperCase()} — ${result.gate.reason}\n` +
      `Outcome: ${result.outcome}${result.publishedVersion ? ` (RAG Model ${result.publishedVersion})` : ''}\n` +
      `Fine-tune: ${result.training.steps} steps, final loss ${result.training.finalLoss.toFixed(3)}, ` +
      `${Math.round(result.training.tokensPerSecond)} tokens/s` +
      `${result.training.resumedFromStep > 0 ? `, resumed from step ${result.training.resumedFromStep}` : ''}\n` +
      `Refs:\n${Object.entries(result.refs)
        .map(([name, value]) =>
          value !== null && typeof value === 'object' && !Array.isArray(value)
            ? Object.entries(value)
                .map(([remoteName, remoteRef]) => `  ${name}.${remoteName}: ${String(remoteRef)}`)
                .join('\n')
            : `  ${name}: ${Array.isArray(value) ? value.join(', ') : value}`,
        )
        .join('\n')}\n` +
      `Workflow: ${workflowId}${ui ? `\nTemporal UI: ${ui}` : ''}\n` +
      webUiLines(result),
  );
}

/** Links into `weft serve`'s web UI when WEFT_SERVE_URL says where it runs: the comparison and the lineage. */
function webUiLines(result: LifecyclePipelineResult): string {
  const links = uiLinks(loadConfig().serveUrl);
  if (!links) return '';
  const resultRefs = result.evaluation.results.map((entry) => entry.evaluationResultRef);
  // Champion first: the compare page's baseline, so its differences read challenger − champion like the gate.
  const ordered = [...resultRefs].reverse();
  const lines = [`Web UI: ${ordered.length > 1 ? links.compare(ordered) : links.lineage(ordered[0]!)}`];
  const subject = result.refs.publishedRegistryRef ?? result.refs.challengerRagModelRef;
  if (subject) lines.push(`        ${links.lineage(subject)}`);
  return `${lines.join('\n')}\n`;
}

export function lifecycleJson(workflowId: string, result: LifecyclePipelineResult) {
  const means = (summary: EvaluationSummary | undefined) =>
    summary ? Object.fromEntries(Object.entries(summary).map(([name, value]) => [name, value.mean])) : null;
  return {
    workflowId,
    outcome: result.outcome,
    scores: {
      before: means(result.evaluation.results.find((entry) => entry.label === 'champion')?.summary),
      after: means(result.evaluation.results[0]?.summary),
    },
    gate: result.gate,
    approval: result.approval,
    training: result.training,
    refs: result.refs,
  };
}

async function sendDecision(workflowId: string, decision: 'approve' | 'reject', approver: string, comment?: string) {
  const { client, close } = await connectClient();
  try {
    const handle = client.workflow.getHandle(workflowId);
    try {
      return await handle.executeUpdate(decision === 'approve' ? approveUpdate : rejectUpdate, {
        args: [{ approver, comment }],
      });
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw new Error(error.cause?.message ?? error.message);
      if (error instanceof WorkflowNotFoundError) {
        throw new Error(
          `No running workflow '${workflowId}' (it may have finished). Check it with 'weft status ${workflowId}'.`,
        );
      }
      throw error;
    }
  } finally {
    await close();
  }
}

export function registerPipelineCommands(program: Command, run: Command): void {
  run
    .command('pipeline')
    .description('Run the lifecycle: fine-tune → register → integrate → evaluate → gate → [approve] → publish')
    .requiredOption('--app <name>', 'the RAG application (registry collection and business key)')
    .requiredOption(
      '--base-model <ref>',
      'base chat model artifact, wandb-artifact:///<entity>/<project>/<name>:<vN|alias>',
    )
    .requiredOption('--dataset <ref>', 'training Dataset ref (rows: question, answer, context)')
    .requiredOption('--evaluation <ref>', 'Evaluation ref (dataset + scorers)')
    .option('--rag <ref>', "RagModel to integrate into (default: the app's production RAG Model)")
    .option('--config <name>', 'training config: demo-cpu or gpu', 'demo-cpu')
    .option(
      '--hp <name=value>',
      'hyper-parameter override, repeatable (max_steps, learning_rate, lora_rank, …)',
      collectHyperParameter,
      {},
    )
    .option('--gate-metric <name>', 'score the gate decides on', 'f1')
    .option('--gate-margin <number>', 'lower CI bound of (challenger − champion) must exceed this', '0')
    .option('--require-approval', 'wait for `weft approve|reject` after the gate passes')
    .option('--approval-timeout <seconds>', 'how long to wait for a decision', '86400')
    .option('--approval-default <decision>', 'decision when nobody decides in time: approve or reject', 'reject')
    .option('--fresh', 'bypass the prediction cache')
    .option('--batch-size <rows>', 'rows per predict activity')
    .option('--parallel <batches>', 'predict activities in flight')
    .option('--id <workflowId>', 'workflow id (default: from app, base model and dataset)')
    .option('--no-wait', 'start it and print the workflow id')
    .option('--json', 'end with one JSON object')
    .action(async (options: Record<string, unknown>) => {
      const config = String(options.config);
      if (config !== 'demo-cpu' && config !== 'gpu')
        throw new Error(`--config must be demo-cpu or gpu, got '${config}'.`);
      const margin = Number(options.gateMargin);
      if (!Number.isFinite(margin))
        throw new Error(`--gate-margin must be a number, got '${String(options.gateMargin)}'.`);
      const approvalDefault = String(options.approvalDefault);
      if (approvalDefault !== 'approve' && approvalDefault !== 'reject') {
        throw new Error(`--approval-default must be approve or reject, got '${approvalDefault}'.`);
      }
      const input: LifecyclePipelineInput = {
        app: String(options.app),
        baseModelRef: String(options.baseModel),
        trainingDatasetRef: String(options.dataset),
        evaluationRef: String(options.evaluation),
        ragModelRef: options.rag as string | undefined,
        trainingConfig: config,
        hyperParameters: options.hp as Record<string, number>,
        gate: { metric: gateMetric(String(options.gateMetric)), margin },
        approval: options.requireApproval
          ? {
              required: true,
              timeoutSeconds: positiveInteger(String(options.approvalTimeout), '--approval-timeout')!,
              defaultDecision: approvalDefault,
            }
          : undefined,
        fresh: Boolean(options.fresh),
        batchSize: positiveInteger(options.batchSize as string | undefined, '--batch-size'),
        maxParallelBatches: positiveInteger(options.parallel as string | undefined, '--parallel'),
      };
      const outcome = await startLifecycle(input, {
        workflowId: options.id as string | undefined,
        wait: options.wait !== false,
        json: Boolean(options.json),
      });
      if (options.json)
        printJson(
          outcome.result ? { ...lifecycleJson(outcome.workflowId, outcome.result), run: outcome.run } : outcome,
        );
      else if (outcome.result) printLifecycleResult(outcome.workflowId, outcome.result, outcome.ui);
      else process.stdout.write(`Started ${outcome.workflowId}. Watch it with 'weft status ${outcome.workflowId}'.\n`);
    });

  program
    .command('status')
    .description("Show a run's progress (its `progress` query, plus training step and loss) or its result")
    .argument('<workflowId>', 'the workflow id printed when the run started')
    .option('--json', 'print as JSON')
    .action(async (workflowId: string, options: { json?: boolean }) => {
      const { client, close } = await connectClient();
      try {
        const handle = client.workflow.getHandle(workflowId);
        let description;
        try {
          description = await handle.describe();
        } catch (error) {
          if (error instanceof WorkflowNotFoundError) {
            throw new Error(
              `No workflow with id '${workflowId}' in this namespace. List runs with 'temporal workflow list'.`,
            );
          }
          throw error;
        }
        const progress = await describeProgress(handle).catch(() => undefined);
        // A failed run says why: its root cause and stage, read from the workflow's failure.
        const failure =
          description.status.name === 'FAILED'
            ? await handle.result().then(
                () => undefined,
                (error: unknown) => describeRunFailure(new RunFailedError(workflowId, error)),
              )
            : undefined;
        const view = {
          workflowId,
          type: description.type,
          status: description.status.name,
          startTime: description.startTime.toISOString(),
          closeTime: description.closeTime?.toISOString(),
          progress,
          failure,
        };
        if (options.json) return printJson(view);
        process.stdout.write(`${workflowId}  ${view.type}  ${view.status}\n`);
        if (failure) process.stdout.write(`${formatRunFailure(failure)}\n`);
        if (progress && 'percent' in progress) {
          process.stdout.write(
            `${progressBar(progress.percent / 100)} ${progress.stage}${progress.detail ? ` — ${progress.detail}` : ''}\n`,
          );
          for (const [name, value] of Object.entries(progress.refs ?? {})) {
            // The remote refs of W&B publishing (refs.wandb) are a map of their own: one line each.
            if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
              for (const [remoteName, remoteRef] of Object.entries(value))
                process.stdout.write(`  ${name}.${remoteName}: ${String(remoteRef)}\n`);
            } else process.stdout.write(`  ${name}: ${String(value)}\n`);
          }
        } else if (progress) {
          process.stdout.write(`${JSON.stringify(progress, null, 2)}\n`);
        }
      } finally {
        await close();
      }
    });

  for (const decision of ['approve', 'reject'] as const) {
    program
      .command(decision)
      .description(`${decision === 'approve' ? 'Approve' : 'Reject'} a run waiting for approval after its gate passed`)
      .argument('<workflowId>')
      .requiredOption('--approver <name>', 'who decides (stored with the run)')
      .option('--comment <text>', 'why')
      .option('--json', 'print as JSON')
      .action(async (workflowId: string, options: { approver: string; comment?: string; json?: boolean }) => {
        const record = await sendDecision(workflowId, decision, options.approver, options.comment);
        if (options.json) printJson(record);
        else process.stdout.write(`${workflowId}: ${record.decision} by ${record.approver}.\n`);
      });
  }
}

export async function startLifecycle(
  input: LifecyclePipelineInput,
  options: { workflowId?: string; wait: boolean; json: boolean },
): Promise<{ workflowId: string; run: 'new' | 'existing'; result?: LifecyclePipelineResult; ui?: string }> {
  return withStack({ quiet: options.json }, async (stack) => {
    const { client, close } = await connectClient(stack.address);
    try {
      const datasetDigest = input.trainingDatasetRef.slice(input.trainingDatasetRef.lastIndexOf(':') + 1);
      const workflowId = options.workflowId ?? lifecycleWorkflowId(input.app, input.baseModelRef, datasetDigest);
      const { handle, run } = await startOrJoinLifecycle(client, workflowId, input);
      if (run === 'existing' && !options.json) {
        process.stderr.write(
          `A run with these inputs already exists (${workflowId}): showing its result. Pass --id <new id> to run it again.\n`,
        );
      }
      const ui = stack.uiUrl
        ? `${stack.uiUrl}/namespaces/${stack.namespace}/workflows/${encodeURIComponent(workflowId)}`
        : undefined;
      if (!options.json) process.stderr.write(`Started ${workflowId}${ui ? `\nTemporal UI: ${ui}` : ''}\n`);
      if (!options.wait) return { workflowId, run, ui };
      const result = await watchLifecycle(handle, options.json);
      return { workflowId, run, result, ui };
    } finally {
      await close();
    }
  });
}

/** Thrown when the business key names a run whose inputs differ from this request's. */
export class DifferentRunInputsError extends Error {
  readonly retryable = false;
  constructor(
    readonly workflowId: string,
    readonly differences: { flag: string; existing: string; requested: string }[],
  ) {
    super(
      `A run with this business key (app, base model, dataset) already exists as ${workflowId}, with different inputs: ` +
        `${differences.map((entry) => `${entry.flag} (existing ${entry.existing}, requested ${entry.requested})`).join('; ')}. ` +
        `Its result is not this request's. Start a new run with --id <new id> (e.g. --id ${workflowId}-2).`,
    );
    this.name = 'DifferentRunInputsError';
  }
}

/** The input a workflow was started with, from the first event of its history. */
async function startedInput(client: Client, workflowId: string): Promise<LifecyclePipelineInput> {
  const history = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId },
    maximumPageSize: 1,
  });
  const payload = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error(`The run ${workflowId} has no recorded input; start a new run with --id <new id>.`);
  return defaultPayloadConverter.fromPayload<LifecyclePipelineInput>(payload);
}

/**
 * Starts a lifecycle run under its business key, or joins the run already there (running, or completed)
 * when that run was started with the same result-changing inputs. A run with other inputs is never
 * reported as this request's: the start is refused, naming every differing input.
 */
export async function startOrJoinLifecycle(
  client: Client,
  workflowId: string,
  input: LifecyclePipelineInput,
): Promise<{ handle: WorkflowHandle<typeof lifecyclePipelineWorkflow>; run: 'new' | 'existing' }> {
  try {
    const handle = await client.workflow.start<typeof lifecyclePipelineWorkflow>('lifecyclePipelineWorkflow', {
      taskQueue: taskQueues.pipeline,
      workflowId,
      args: [input],
      // A running or completed run with this key is compared below; a failed one may be started again.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    });
    return { handle, run: 'new' };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  const differences = differingLifecycleInputs(await startedInput(client, workflowId), input);
  if (differences.length > 0) throw new DifferentRunInputsError(workflowId, differences);
  return { handle: client.workflow.getHandle<typeof lifecyclePipelineWorkflow>(workflowId), run: 'existing' };
}
