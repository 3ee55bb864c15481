import { canonicalJson } from './digest';
import { InvalidValueError, NotFoundError } from './errors';
import { runOnce } from './idempotency';
import { validateName } from './refs';
import { newId, parseJson, resolveProject, timestamp, type StoreContext } from './store-context';

/** W&B's run states; `killed` is a run whose workflow was cancelled or terminated. */
export type RunState = 'running' | 'finished' | 'failed' | 'crashed' | 'killed';

export interface CreateRunInput {
  /** Caller-chosen id (e.g. derived from the workflow id); generated when absent. Creating an existing id returns that run. */
  id?: string;
  entity?: string;
  project?: string;
  jobType: string;
  name?: string;
  config?: Record<string, unknown>;
  workflowId?: string;
  idempotencyKey?: string;
}

export interface Run {
  id: string;
  entity: string;
  project: string;
  name: string | null;
  jobType: string;
  state: RunState;
  config: Record<string, unknown>;
  summary: Record<string, unknown>;
  workflowId: string | null;
  startedAt: string;
  finishedAt: string | null;
}

interface RunRow {
  id: string;
  entity: string;
  project: string;
  name: string | null;
  job_type: string;
  state: RunState;
  config_json: string;
  summary_json: string;
  workflow_id: string | null;
  started_at: string;
  finished_at: string | null;
}

const RUN_ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

function plainObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidValueError(`${what} must be a plain object such as {"learning_rate": 0.0002}.`);
  }
  canonicalJson(value);
  return value as Record<string, unknown>;
}

function toRun(row: RunRow): Run {
  return {
    id: row.id,
    entity: row.entity,
    project: row.project,
    name: row.name,
    jobType: row.job_type,
    state: row.state,
    config: parseJson(row.config_json),
    summary: parseJson(row.summary_json),
    workflowId: row.workflow_id,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

/** W&B runs: a job with config and summary metrics; artifacts it used and logged form the lineage graph. */
export class RunStore {
  constructor(private readonly context: StoreContext) {}

  /** Starts a run. With an `id` that exists already, returns that run unchanged (a retried start creates nothing). */
  async create(input: CreateRunInput): Promise<Run> {
    const { entity, project } = resolveProject(this.context, input.entity, input.project);
    const jobType = validateName('job type', input.jobType);
    const id = input.id ?? newId();
    if (!RUN_ID_PATTERN.test(id)) {
      throw new InvalidValueError(`The run id "${id}" is not allowed; use 1-128 letters, digits, "-", "_" or ".".`);
    }
    const config = plainObject(input.config, 'Run config');
    return this.context.database.transaction((transaction) =>
      runOnce(
        transaction,
        input.idempotencyKey,
        'runs.create',
        { entity, project, jobType, config, name: input.name ?? null },
        async () => {
          await transaction.lock(`run:${id}`);
          const [existing] = await transaction.query<RunRow>('SELECT * FROM runs WHERE id = ?', [id]);
          if (existing) return toRun(existing);
          const row: RunRow = {
            id,
            entity,
            project,
            name: input.name ?? null,
            job_type: jobType,
            state: 'running',
            config_json: canonicalJson(config),
            summary_json: '{}',
            workflow_id: input.workflowId ?? null,
            started_at: timestamp(),
            finished_at: null,
          };
          await transaction.execute(
            `INSERT INTO runs (id, entity, project, name, job_type, state, config_json, summary_json, workflow_id, started_at, finished_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [
              row.id,
              row.entity,
              row.project,
              row.name,
              row.job_type,
              row.state,
              row.config_json,
              row.summary_json,
              row.workflow_id,
              row.started_at,
              row.finished_at,
            ],
          );
          return toRun(row);
        },
      ),
    );
  }

  /** Records summary metrics (merged into the existing summary) and the final state. Finishing twice keeps the first end time. */
  async finish(
    id: string,
    outcome: { summary?: Record<string, unknown>; state?: Exclude<RunState, 'running'> } = {},
  ): Promise<Run> {
    const summary = plainObject(outcome.summary, 'Run summary');
    const state = outcome.state ?? 'finished';
    if (!['finished', 'failed', 'crashed', 'killed'].includes(state)) {
      throw new InvalidValueError(
        `A run finishes as "finished", "failed", "crashed" or "killed", not "${String(state)}".`,
      );
    }
    return this.context.database.transaction(async (transaction) => {
      const [row] = await transaction.query<RunRow>('SELECT * FROM runs WHERE id = ?', [id]);
      if (!row) throw new NotFoundError(`The run ${id} does not exist; create it with runs.create first.`);
      const merged = { ...parseJson<Record<string, unknown>>(row.summary_json), ...summary };
      const finishedAt = row.finished_at ?? timestamp();
      await transaction.execute('UPDATE runs SET state = ?, summary_json = ?, finished_at = ? WHERE id = ?', [
        state,
        canonicalJson(merged),
        finishedAt,
        id,
      ]);
      return toRun({ ...row, state, summary_json: canonicalJson(merged), finished_at: finishedAt });
    });
  }

  async get(id: string): Promise<Run> {
    const [row] = await this.context.database.query<RunRow>('SELECT * FROM runs WHERE id = ?', [id]);
    if (!row) throw new NotFoundError(`The run ${id} does not exist.`);
    return toRun(row);
  }

  /** Runs still `running` that a workflow opened (any project), oldest first: what the run reaper checks. */
  async listRunningOfWorkflows(limit = 500): Promise<Run[]> {
    const rows = await this.context.database.query<RunRow>(
      `SELECT * FROM runs WHERE state = 'running' AND workflow_id IS NOT NULL ORDER BY started_at LIMIT ?`,
      [limit],
    );
    return rows.map(toRun);
  }

  /** Runs of a project, newest first, optionally of one job type. */
  async list(scope: { entity?: string; project?: string; jobType?: string; limit?: number } = {}): Promise<Run[]> {
    const { entity, project } = resolveProject(this.context, scope.entity, scope.project);
    const rows = await this.context.database.query<RunRow>(
      `SELECT * FROM runs WHERE entity = ? AND project = ?${scope.jobType === undefined ? '' : ' AND job_type = ?'} ORDER BY started_at DESC LIMIT ?`,
      scope.jobType === undefined
        ? [entity, project, scope.limit ?? 100]
        : [entity, project, scope.jobType, scope.limit ?? 100],
    );
    return rows.map(toRun);
  }
}
