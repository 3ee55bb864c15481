import type { Command } from 'commander';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { appNameProblems, evaluationProblems, refuseInvalidInputs } from '../../activities/validation';
import { loadConfig } from '../../lib/config/config';
import { openLineageStore } from '../../lib/lineage';
import { lineageStoreOptions } from '../../lib/services';
import type { ReevaluateWorkflowInput } from '../../workflows/contracts/reevaluation';
import { taskQueues } from '../../workflows/contracts/task-queues';
import type { reevaluateWorkflow } from '../../workflows';
import { formatTable, printJson } from '../output';
import { connectClient } from '../temporal-client';

const metrics = ['exact_match', 'f1', 'hit@5', 'mrr', 'groundedness'] as const;

function scheduleIdFor(app: string): string {
  return `weft-reevaluate-${app}`;
}

async function withClient<T>(
  body: (client: Awaited<ReturnType<typeof connectClient>>['client']) => Promise<T>,
): Promise<T> {
  const { client, close } = await connectClient();
  try {
    return await body(client);
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) {
      throw new Error(`No schedule with that id. List schedules with 'weft schedule list'.`);
    }
    throw error;
  } finally {
    await close();
  }
}

function parseDate(text: string, flag: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime()))
    throw new Error(`${flag} must be a date/time such as 2026-11-01T00:00:00Z, got '${text}'.`);
  return date;
}

export function registerScheduleCommands(program: Command): void {
  const schedule = program
    .command('schedule')
    .description("Nightly re-evaluation of an app's production RagModel, as a Temporal Schedule (overlap: skip)");

  schedule
    .command('create')
    .description('Create the re-evaluation schedule of an app')
    .requiredOption('--app <name>', 'the RAG application')
    .requiredOption('--evaluation <ref>', 'Evaluation ref; each run uses the latest version of its dataset')
    .option('--cron <expression>', 'when to run (UTC cron)', '0 2 * * *')
    .option('--metric <name>', `score watched for regressions (${metrics.join(', ')})`, 'f1')
    .option('--threshold <number>', 'a drop of the mean larger than this is a regression', '0.05')
    .option('--catchup-window <duration>', 'missed runs within this window run after an outage', '1 day')
    .option('--id <scheduleId>', 'schedule id (default: weft-reevaluate-<app>)')
    .option('--paused', 'create it paused')
    .option('--json', 'print as JSON')
    .action(
      async (options: {
        app: string;
        evaluation: string;
        cron: string;
        metric: string;
        threshold: string;
        catchupWindow: string;
        id?: string;
        paused?: boolean;
        json?: boolean;
      }) => {
        if (!(metrics as readonly string[]).includes(options.metric)) {
          throw new Error(`--metric must be one of ${metrics.join(', ')}, got '${options.metric}'.`);
        }
        const threshold = Number(options.threshold);
        if (!Number.isFinite(threshold) || threshold < 0) {
          throw new Error(`--threshold must be a number ≥ 0, got '${options.threshold}'.`);
        }
        const input: ReevaluateWorkflowInput = {
          app: options.app,
          evaluationRef: options.evaluation,
          metric: options.metric as ReevaluateWorkflowInput['metric'],
          regressionThreshold: threshold,
        };
        // Every input is checked against the lineage store before the schedule exists: a bad one never fires nightly.
        const config = loadConfig();
        const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
        try {
          refuseInvalidInputs([
            ...appNameProblems(options.app),
            ...(await evaluationProblems(store, options.evaluation)),
          ]);
        } finally {
          await store.close();
        }
        const scheduleId = options.id ?? scheduleIdFor(options.app);
        await withClient(async (client) => {
          await client.schedule.create({
            scheduleId,
            spec: { cronExpressions: [options.cron] },
            action: {
              type: 'startWorkflow',
              workflowType: 'reevaluateWorkflow',
              taskQueue: taskQueues.pipeline,
              workflowId: `reevaluate/${options.app}`,
              args: [input] as Parameters<typeof reevaluateWorkflow>,
            },
            policies: {
              overlap: ScheduleOverlapPolicy.SKIP,
              catchupWindow: options.catchupWindow as Duration,
            },
            state: { paused: options.paused ?? false, note: `weft: nightly re-evaluation of ${options.app}` },
          });
        });
        if (options.json) printJson({ scheduleId, input, cron: options.cron });
        else process.stdout.write(`Created schedule ${scheduleId} (${options.cron}, overlap: skip).\n`);
      },
    );

  schedule
    .command('list')
    .description('List schedules')
    .option('--json', 'print as JSON')
    .action(async (options: { json?: boolean }) => {
      const rows = await withClient(async (client) => {
        const found = [];
        for await (const summary of client.schedule.list()) {
          found.push({
            scheduleId: summary.scheduleId,
            paused: summary.state.paused,
            note: summary.state.note ?? '',
            nextRun: summary.info.nextActionTimes[0]?.toISOString() ?? '',
            cron: summary.spec?.calendars?.length ? 'calendar' : '',
          });
        }
        return found;
      });
      if (options.json) printJson(rows);
      else {
        process.stdout.write(
          `${formatTable(
            ['schedule', 'paused', 'next run', 'note'],
            rows.map((row) => [row.scheduleId, String(row.paused), row.nextRun, row.note]),
          )}\n`,
        );
      }
    });

  schedule
    .command('describe')
    .description('Show a schedule: spec, state, recent and upcoming runs')
    .argument('<scheduleId>')
    .option('--json', 'print as JSON')
    .action(async (scheduleId: string, options: { json?: boolean }) => {
      const description = await withClient((client) => client.schedule.getHandle(scheduleId).describe());
      const view = {
        scheduleId,
        paused: description.state.paused,
        note: description.state.note,
        overlap: description.policies.overlap,
        catchupWindowMilliseconds: description.policies.catchupWindow,
        nextRuns: description.info.nextActionTimes.map((time) => time.toISOString()),
        recentRuns: description.info.recentActions.map((action) => ({
          scheduledAt: action.scheduledAt.toISOString(),
          workflowId: action.action.type === 'startWorkflow' ? action.action.workflow.workflowId : undefined,
        })),
        runningWorkflows: description.info.runningActions.map((action) => action.workflow.workflowId),
      };
      if (options.json) printJson(view);
      else process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    });

  for (const [name, text] of [
    ['pause', 'Pause a schedule'],
    ['unpause', 'Resume a paused schedule'],
    ['trigger', 'Run a schedule now (overlap policy still applies)'],
    ['delete', 'Delete a schedule (runs it started are kept)'],
  ] as const) {
    schedule
      .command(name)
      .description(text)
      .argument('<scheduleId>')
      .option('--note <text>', 'why (pause/unpause)')
      .action(async (scheduleId: string, options: { note?: string }) => {
        await withClient(async (client) => {
          const handle = client.schedule.getHandle(scheduleId);
          if (name === 'pause') await handle.pause(options.note);
          else if (name === 'unpause') await handle.unpause(options.note);
          else if (name === 'trigger') await handle.trigger();
          else await handle.delete();
        });
        process.stdout.write(`${name}: ${scheduleId} done.\n`);
      });
  }

  schedule
    .command('backfill')
    .description('Run the schedule for every time it would have fired in a past interval')
    .argument('<scheduleId>')
    .requiredOption('--start <time>', 'interval start (ISO-8601)')
    .requiredOption('--end <time>', 'interval end (ISO-8601)')
    .action(async (scheduleId: string, options: { start: string; end: string }) => {
      const start = parseDate(options.start, '--start');
      const end = parseDate(options.end, '--end');
      if (end <= start) throw new Error('--end must be after --start.');
      await withClient((client) =>
        client.schedule.getHandle(scheduleId).backfill({ start, end, overlap: ScheduleOverlapPolicy.ALLOW_ALL }),
      );
      process.stdout.write(
        `Backfill of ${scheduleId} from ${start.toISOString()} to ${end.toISOString()} requested.\n`,
      );
    });
}
