import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { taskQueues } from '../../workflows/contracts/task-queues';
import { unreachableMessage, type TemporalTarget } from './connection';
import {
  namespaceCreateCommand,
  namespaceExists,
  searchAttributeCreateCommand,
  searchAttributeProblems,
} from './namespace-setup';

const TaskQueueType = temporal.api.enums.v1.TaskQueueType;

/** The queue each worker kind polls, and the kind of task that shows its pollers. */
export const workerQueues = [
  { kind: 'orchestrator', queue: taskQueues.pipeline, type: TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW },
  { kind: 'gpu', queue: taskQueues.gpu, type: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY },
  { kind: 'registry', queue: taskQueues.registry, type: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY },
] as const;

export type QueueWorkerKind = (typeof workerQueues)[number]['kind'];

/** For each worker kind, the identities (`host:pid@…`) polling its queue now. */
export async function pollersByKind(
  connection: Connection,
  namespace: string,
): Promise<Record<QueueWorkerKind, string[]>> {
  const result = {} as Record<QueueWorkerKind, string[]>;
  for (const { kind, queue, type } of workerQueues) {
    const description = await connection.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: queue },
      taskQueueType: type,
    });
    result[kind] = [...new Set((description.pollers ?? []).map((poller) => poller.identity ?? '?'))];
  }
  return result;
}

export interface TemporalCheck {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** Commands that fix a failed check, exactly as a person runs them. */
  commands?: string[];
}

/**
 * `weft doctor`'s view of the Temporal server weft will use: reachable, the namespace there, weft's search attributes
 * registered with their types (naming the `temporal operator` commands that fix what is missing), and pollers on the
 * three task queues. Without TEMPORAL_ADDRESS, weft starts its embedded server when none answers, and a server it finds
 * at the default address may be anyone's: what is wrong there is a warning, not a failure.
 */
export async function checkTemporal(target: TemporalTarget): Promise<TemporalCheck[]> {
  const checks = await temporalChecks(target);
  return target.explicit
    ? checks
    : checks.map((check) => (check.status === 'fail' ? { ...check, status: 'warn' as const } : check));
}

async function temporalChecks(target: TemporalTarget): Promise<TemporalCheck[]> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: 3000 });
  } catch (error) {
    return [
      target.explicit
        ? { name: 'temporal', status: 'fail', detail: unreachableMessage(target, error) }
        : {
            name: 'temporal',
            status: 'ok',
            detail: `TEMPORAL_ADDRESS unset and nothing answers at ${target.address}: weft commands start the embedded dev server`,
          },
    ];
  }
  try {
    let version: string;
    try {
      const info = await connection.workflowService.getSystemInfo({});
      version = info.serverVersion || 'version not reported';
    } catch (error) {
      if (!target.explicit) {
        return [
          {
            name: 'temporal',
            status: 'ok',
            detail: `nothing answers at ${target.address}: weft starts the embedded dev server`,
          },
        ];
      }
      return [{ name: 'temporal', status: 'fail', detail: unreachableMessage(target, error) }];
    }
    const checks: TemporalCheck[] = [
      { name: 'temporal', status: 'ok', detail: `Temporal Server ${version} at ${target.address}` },
    ];
    if (!(await namespaceExists(connection, target.namespace))) {
      const command = namespaceCreateCommand(target);
      checks.push({
        name: 'namespace',
        status: 'fail',
        detail: `namespace '${target.namespace}' does not exist at ${target.address}; register it with the command below`,
        commands: [command],
      });
      return checks;
    }
    checks.push({ name: 'namespace', status: 'ok', detail: `namespace '${target.namespace}' exists` });
    const problems = await searchAttributeProblems(connection, target.namespace);
    const missing = problems.filter((problem) => problem.found === undefined);
    const wrongType = problems.filter((problem) => problem.found !== undefined);
    if (problems.length === 0) {
      checks.push({ name: 'search-attributes', status: 'ok', detail: "weft's search attributes are registered" });
    } else {
      const commands = missing.map((problem) => searchAttributeCreateCommand(target, problem.name));
      const parts = [
        ...(missing.length > 0
          ? [`missing ${missing.map((problem) => problem.name).join(', ')}; register them with the commands below`]
          : []),
        ...wrongType.map(
          (problem) =>
            `${problem.name} is ${problem.found}, weft needs ${problem.want} (a type cannot change: use another namespace)`,
        ),
      ];
      checks.push({ name: 'search-attributes', status: 'fail', detail: parts.join('; '), commands });
    }
    const pollers = await pollersByKind(connection, target.namespace);
    const idle = workerQueues.filter(({ kind }) => pollers[kind].length === 0);
    const summary = workerQueues.map(({ kind, queue }) => `${queue}: ${pollers[kind].length} ${kind} worker(s)`);
    checks.push({
      name: 'task-queues',
      status: idle.length === 0 ? 'ok' : 'warn',
      detail:
        summary.join(', ') +
        (idle.length === 0
          ? ''
          : `; nothing polls ${idle.map(({ queue }) => queue).join(', ')}: start ${idle
              .map(({ kind }) => `workers/${kind}.ts`)
              .join(', ')} (node --require tsx/cjs workers/<kind>.ts) with the same TEMPORAL_* settings`),
    });
    return checks;
  } finally {
    await connection.close();
  }
}
