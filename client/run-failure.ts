import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TemporalFailure } from '@temporalio/common';

/** Why a run failed, as the CLI prints it (and `--json` carries it). */
export interface RunFailure {
  /** The root cause's own message (the ApplicationFailure at the end of the cause chain). */
  message: string;
  /** The stage that failed: the lifecycle stage the workflow recorded, else the failing activity or child workflow. */
  stage?: string;
  /** The failure type (errorTypes, e.g. WeftInvalidInput), when the root cause has one. */
  type?: string;
  workflowId?: string;
  /** Every message from the outermost failure to the root, for the curious. */
  chain: string[];
}

/** A workflow the CLI waited on ended in failure; carries the workflow id next to the SDK's error. */
export class RunFailedError extends Error {
  constructor(
    readonly workflowId: string,
    readonly failure: unknown,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
    this.name = 'RunFailedError';
  }
}

/** Awaits a workflow result; a failure comes back as RunFailedError naming the workflow. */
export async function resultOrRunFailure<T>(workflowId: string, result: Promise<T>): Promise<T> {
  try {
    return await result;
  } catch (error) {
    if (error instanceof WorkflowFailedError) throw new RunFailedError(workflowId, error);
    throw error;
  }
}

function stageDetail(failure: ApplicationFailure): string | undefined {
  const [detail] = failure.details ?? [];
  if (detail && typeof detail === 'object' && typeof (detail as { stage?: unknown }).stage === 'string') {
    return (detail as { stage: string }).stage;
  }
  return undefined;
}

/**
 * Walks a failure's cause chain (WorkflowFailedError → ChildWorkflowFailure → ActivityFailure →
 * ApplicationFailure) to its root. Returns undefined for errors that are not a workflow's failure.
 */
export function describeRunFailure(error: unknown): RunFailure | undefined {
  const workflowId = error instanceof RunFailedError ? error.workflowId : undefined;
  let current: unknown = error instanceof RunFailedError ? error.failure : error;
  if (!(current instanceof WorkflowFailedError) && !(current instanceof TemporalFailure)) return undefined;
  const chain: string[] = [];
  let stage: string | undefined;
  let root: Error = current;
  let type: string | undefined;
  // Bounded: a cause chain crossing processes is short; a cycle must not hang the CLI.
  for (let depth = 0; current instanceof Error && depth < 32; depth += 1) {
    root = current;
    if (current.message) chain.push(current.message);
    if (current instanceof ApplicationFailure) {
      stage ??= stageDetail(current);
      // The innermost weft type wins; a plain Error's cause crosses the wire typed 'Error' or untyped.
      if (current.type && current.type !== 'Error') type = current.type;
    } else if (current instanceof ActivityFailure) stage ??= `activity ${current.activityType}`;
    else if (current instanceof ChildWorkflowFailure) stage ??= `child workflow ${current.workflowType}`;
    current = current.cause;
  }
  const message = root.message;
  return { message, stage, type, workflowId, chain };
}

/** One or two lines for people: the stage and root cause, then where to look. */
export function formatRunFailure(failure: RunFailure): string {
  const stagePrefix =
    failure.stage && !failure.message.startsWith(`${failure.stage} failed`) ? `${failure.stage} failed: ` : '';
  const where = failure.workflowId ? `\n  workflow: ${failure.workflowId} (weft status ${failure.workflowId})` : '';
  return `run failed — ${stagePrefix}${failure.message}${where}`;
}
