import { z } from 'zod';

/**
 * Request bodies of the Weave trace-server endpoints weft serves, as the weave SDK (0.11) sends them
 * (its generated client: node_modules/weave/dist/generated/traceServerApi.d.ts). Unknown fields are
 * ignored, as the Weave server ignores them; missing or mistyped required fields are a 422.
 */

const projectId = z.string().min(3).max(300);
const jsonRecord = z.record(z.string(), z.unknown());
const optionalString = z.string().nullish();
const sortBy = z.array(z.object({ field: z.string().min(1), direction: z.enum(['asc', 'desc']) })).nullish();
const limit = z.number().int().min(0).max(100_000).nullish();
const offset = z.number().int().min(0).nullish();

export const startedCallSchema = z.object({
  project_id: projectId,
  id: optionalString,
  // Lengths and id formats are the store's to check, per call: a batch is not refused for one call (see upsertBatch).
  op_name: z.string().min(1),
  display_name: optionalString,
  trace_id: optionalString,
  parent_id: optionalString,
  started_at: z.string().min(1),
  attributes: jsonRecord.default({}),
  inputs: jsonRecord.default({}),
  wb_run_id: optionalString,
});
export type StartedCall = z.infer<typeof startedCallSchema>;

export const endedCallSchema = z.object({
  project_id: projectId,
  id: z.string().min(1),
  ended_at: z.string().min(1),
  exception: optionalString,
  output: z.unknown().optional(),
  summary: jsonRecord.default({}),
  display_name: optionalString,
});
export type EndedCall = z.infer<typeof endedCallSchema>;

export const callStartRequest = z.object({ start: startedCallSchema });
export const callEndRequest = z.object({ end: endedCallSchema });
export const callUpsertBatchRequest = z.object({
  batch: z.array(
    z.union([
      z.object({ mode: z.literal('start'), req: callStartRequest }),
      z.object({ mode: z.literal('end'), req: callEndRequest }),
    ]),
  ),
});
export const callReadRequest = z.object({ project_id: projectId, id: z.string().min(1) });
export const callUpdateRequest = z.object({
  project_id: projectId,
  call_id: z.string().min(1),
  display_name: optionalString,
});

export const callsFilterSchema = z
  .object({
    op_names: z.array(z.string()).nullish(),
    input_refs: z.array(z.string()).nullish(),
    output_refs: z.array(z.string()).nullish(),
    parent_ids: z.array(z.string()).nullish(),
    trace_ids: z.array(z.string()).nullish(),
    call_ids: z.array(z.string()).nullish(),
    trace_roots_only: z.boolean().nullish(),
    wb_user_ids: z.array(z.string()).nullish(),
    wb_run_ids: z.array(z.string()).nullish(),
  })
  .nullish();
export type CallsFilter = z.infer<typeof callsFilterSchema>;

/** A Weave query expression (`{"$expr": {...}}`); its operators are checked when it is evaluated. */
const queryExpression = z.object({ $expr: jsonRecord }).nullish();

/** Most calls one calls query answers; larger reads page with `offset` (the SDKs page by 1000). Without a limit, every match is streamed. */
export const MAX_CALLS_PER_QUERY = 10_000;

export const callsQueryRequest = z.object({
  project_id: projectId,
  filter: callsFilterSchema,
  limit: z
    .number()
    .int()
    .min(0)
    .max(MAX_CALLS_PER_QUERY, `at most ${MAX_CALLS_PER_QUERY} calls per request; read more pages with offset`)
    .nullish(),
  offset,
  sort_by: sortBy,
  query: queryExpression,
  columns: z.array(z.string()).nullish(),
});
export type CallsQuery = z.infer<typeof callsQueryRequest>;
export const callsQueryStatsRequest = z.object({
  project_id: projectId,
  filter: callsFilterSchema,
  query: queryExpression,
});

export const objectCreateRequest = z.object({
  obj: z.object({
    project_id: projectId,
    object_id: z.string().min(1).max(128),
    val: z.unknown().refine((value) => value !== undefined, 'val is required'),
    builtin_object_class: optionalString,
  }),
});
export const objectReadRequest = z.object({
  project_id: projectId,
  object_id: z.string().min(1).max(128),
  digest: z.string().min(1).max(128).default('latest'),
});
export const objectsQueryRequest = z.object({
  project_id: projectId,
  filter: z
    .object({
      base_object_classes: z.array(z.string()).nullish(),
      object_ids: z.array(z.string()).nullish(),
      is_op: z.boolean().nullish(),
      latest_only: z.boolean().nullish(),
    })
    .nullish(),
  limit,
  offset,
  sort_by: sortBy,
  metadata_only: z.boolean().nullish(),
});

export const tableCreateRequest = z.object({
  table: z.object({ project_id: projectId, rows: z.array(jsonRecord) }),
});
export const tableUpdateRequest = z.object({
  project_id: projectId,
  base_digest: z.string().min(1).max(128),
  updates: z.array(
    z.union([
      z.object({ append: z.object({ row: jsonRecord }) }),
      z.object({ pop: z.object({ index: z.number().int().min(0) }) }),
      z.object({ insert: z.object({ index: z.number().int().min(0), row: jsonRecord }) }),
    ]),
  ),
});
export const tableQueryRequest = z.object({
  project_id: projectId,
  digest: z.string().min(1).max(128),
  filter: z.object({ row_digests: z.array(z.string()).nullish() }).nullish(),
  limit,
  offset,
  sort_by: sortBy,
});
export const tableQueryStatsRequest = z.object({ project_id: projectId, digest: z.string().min(1).max(128) });

export const fileContentRequest = z.object({ project_id: projectId, digest: z.string().min(1).max(128) });

export const feedbackCreateRequest = z.object({
  project_id: projectId,
  /** weave 0.54 picks the id client-side (a retried item keeps it). */
  id: optionalString,
  weave_ref: z.string().min(1),
  creator: optionalString,
  feedback_type: z.string().min(1),
  payload: jsonRecord,
  annotation_ref: optionalString,
  runnable_ref: optionalString,
  call_ref: optionalString,
  trigger_ref: optionalString,
});
export const feedbackQueryRequest = z.object({
  project_id: projectId,
  query: queryExpression,
  limit,
  offset,
});

export const refsReadBatchRequest = z.object({ refs: z.array(z.string()).max(1000) });

/** A GraphQL request of the wandb and weave SDKs (executed by lib/weave-server/wandb-api over W&B's schema subset). */
export const graphqlRequest = z.object({
  query: z.string().min(1),
  variables: jsonRecord.nullish(),
  operationName: z.string().nullish(),
});

/**
 * weave (Python) 0.54's v2 write path: a call sent once, start and end together (`/v2/{entity}/{project}/calls/complete`),
 * and the eager start/end of `Evaluation.evaluate` (`/v2/{entity}/{project}/call/start` and `/call/end`).
 */
export const completedCallSchema = startedCallSchema.extend({
  id: z.string().min(1),
  ended_at: z.string().min(1),
  exception: optionalString,
  output: z.unknown().optional(),
  summary: jsonRecord.default({}),
});
export type CompletedCall = z.infer<typeof completedCallSchema>;
export const callsCompleteRequest = z.object({ batch: z.array(completedCallSchema) });

/** weave 0.54 sends scorer results in batches, each item with the id the client already handed out. */
export const feedbackBatchCreateRequest = z.object({
  batch: z.array(feedbackCreateRequest).max(10_000),
});
