import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { LineageStore, Run, RunState } from '../lineage';
import { temporalTarget } from './connection';

/** Lineage state for a closed workflow's still-running run: why the workflow ended decides how the run ends. */
const closedStates: Record<string, Exclude<RunState, 'running'>> = {
  FAILED: 'failed',
  TIMED_OUT: 'failed',
  CANCELLED: 'killed',
  TERMINATED: 'killed',
  // A workflow that completed without finishing its run lost track of it (a bug); the run did not finish.
  COMPLETED: 'crashed',
};

export interface ReapedRun {
  runId: string;
  workflowId: string;
  workflowStatus: string;
  state: Exclude<RunState, 'running'>;
}

/**
 * Closes every lineage run still `running` whose workflow has closed (failed, timed out, cancelled,
 * terminated): the cleanup path that survives termination, where no code of the workflow runs. A run
 * whose workflow is running (or continued as new), or unknown to this namespace, is left alone.
 */
export async function closeRunsOfClosedWorkflows(store: LineageStore, client: Client): Promise<ReapedRun[]> {
  const reaped: ReapedRun[] = [];
  const statusOf = new Map<string, string | null>();
  for (const run of await store.runs.listRunningOfWorkflows()) {
    const workflowId = run.workflowId!;
    if (!statusOf.has(workflowId)) statusOf.set(workflowId, await workflowStatus(client, workflowId));
    const status = statusOf.get(workflowId);
    const state = status ? closedStates[status] : undefined;
    if (!state) continue;
    await closeRun(store, run, status!, state);
    reaped.push({ runId: run.id, workflowId, workflowStatus: status!, state });
  }
  return reaped;
}

async function workflowStatus(client: Client, workflowId: string): Promise<string | null> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return null;
    throw error;
  }
}

async function closeRun(store: LineageStore, run: Run, workflowStatus: string, state: Exclude<RunState, 'running'>) {
  await store.runs.finish(run.id, {
    state,
    summary: { closed_by: 'run-reaper', workflow_status: workflowStatus.toLowerCase() },
  });
}

export interface RunReaperOptions {
  store: LineageStore;
  /** How often to look, in milliseconds; default 60 000 (a closed workflow's run is closed within a minute). */
  intervalMilliseconds?: number;
  logger: { info(message: string, meta?: Record<string, unknown>): void; warn(message: string): void };
}

/**
 * Runs the reaper in a worker process: once at start, then on an interval, on its own client connection
 * (from the standard TEMPORAL_* settings). A failed round is logged and retried at the next one.
 */
export function startRunReaper(options: RunReaperOptions): { stop(): Promise<void> } {
  let connection: Connection | undefined;
  let round: Promise<void> = Promise.resolve();
  const reap = async () => {
    try {
      const target = temporalTarget();
      connection ??= await Connection.connect({ ...target.connectionOptions, connectTimeout: 5000 });
      const client = new Client({ connection, namespace: target.namespace });
      for (const run of await closeRunsOfClosedWorkflows(options.store, client)) {
        options.logger.info('closed the lineage run of a closed workflow', { ...run });
      }
    } catch (error) {
      options.logger.warn(`run reaper: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const tick = () => {
    round = round.then(reap);
  };
  tick();
  const timer = setInterval(tick, options.intervalMilliseconds ?? 60_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await round;
      await connection?.close();
    },
  };
}
