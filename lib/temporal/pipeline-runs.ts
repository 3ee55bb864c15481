import { Client, Connection } from '@temporalio/client';
import {
  weftAppSearchAttribute,
  weftGateDecisionSearchAttribute,
  weftRegressionSearchAttribute,
  weftScoreSearchAttribute,
  weftStageSearchAttribute,
} from '../../workflows/contracts/search-attributes';
import { temporalTarget, unreachableMessage } from './connection';

/** One lifecycle or nightly run as Temporal's visibility lists it (its search attributes). */
export interface PipelineRun {
  workflowId: string;
  runId: string;
  workflowType: string;
  status: string;
  startTime: string;
  closeTime: string | null;
  stage: string | null;
  app: string | null;
  gateDecision: string | null;
  score: number | null;
  regression: boolean | null;
}

/** Lists runs from Temporal's visibility; `weft serve`'s pipelines page reads it. */
export interface PipelineRunSource {
  /** Most recent first, at most `limit`. */
  list(limit: number): Promise<PipelineRun[]>;
  /** Where the runs come from, for the page: `Temporal at 127.0.0.1:7233, namespace default`. */
  readonly description: string;
  close(): Promise<void>;
}

/** The workflow types the page lists: the lifecycle pipeline and the nightly re-evaluation. */
export const pipelineWorkflowTypes = ['lifecyclePipelineWorkflow', 'reevaluateWorkflow'] as const;

/**
 * Temporal visibility on the standard TEMPORAL_* settings. Connects on first use and again after a failure, so a
 * `weft serve` started before the Temporal server still shows runs once it is up.
 */
export function temporalPipelineRuns(environment: NodeJS.ProcessEnv = process.env): PipelineRunSource {
  const target = temporalTarget(environment);
  let connected: Promise<{ client: Client; connection: Connection }> | undefined;
  const connect = () => {
    connected ??= Connection.connect({ ...target.connectionOptions, connectTimeout: 3000 })
      .then((connection) => ({ connection, client: new Client({ connection, namespace: target.namespace }) }))
      .catch((error: unknown) => {
        connected = undefined;
        throw new Error(unreachableMessage(target, error));
      });
    return connected;
  };
  return {
    description: `Temporal at ${target.address}, namespace ${target.namespace}`,
    async list(limit) {
      const { client } = await connect();
      const runs: PipelineRun[] = [];
      const query = `WorkflowType IN (${pipelineWorkflowTypes.map((type) => `'${type}'`).join(', ')})`;
      for await (const execution of client.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
        const attributes = execution.typedSearchAttributes;
        runs.push({
          workflowId: execution.workflowId,
          runId: execution.runId,
          workflowType: execution.type,
          status: execution.status.name,
          startTime: execution.startTime.toISOString(),
          closeTime: execution.closeTime?.toISOString() ?? null,
          stage: attributes.get(weftStageSearchAttribute) ?? null,
          app: attributes.get(weftAppSearchAttribute) ?? null,
          gateDecision: attributes.get(weftGateDecisionSearchAttribute) ?? null,
          score: attributes.get(weftScoreSearchAttribute) ?? null,
          regression: attributes.get(weftRegressionSearchAttribute) ?? null,
        });
        if (runs.length >= limit) break;
      }
      return runs;
    },
    async close() {
      const current = connected;
      connected = undefined;
      if (current) await current.then(({ connection }) => connection.close()).catch(() => undefined);
    },
  };
}
