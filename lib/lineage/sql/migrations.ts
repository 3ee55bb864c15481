import { StoreConfigurationError } from '../errors';
import type { SqlDatabase } from './sql-database';

/**
 * Versioned schema changes, applied in order inside one transaction each and recorded in
 * schema_migrations. The DDL is the common subset of SQLite and PostgreSQL (TEXT, INTEGER, BIGINT),
 * so both backends have the same schema. Append new migrations; never edit a released one.
 */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'objects, tables, artifacts, registry, runs, calls',
    statements: [
      `CREATE TABLE objects (
        project TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL, version_index INTEGER NOT NULL,
        type_name TEXT, value_json TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (project, name, digest), UNIQUE (project, name, version_index))`,
      `CREATE TABLE table_rows (project TEXT NOT NULL, digest TEXT NOT NULL, value_json TEXT NOT NULL,
        PRIMARY KEY (project, digest))`,
      `CREATE TABLE tables (project TEXT NOT NULL, digest TEXT NOT NULL, row_digests_json TEXT NOT NULL,
        row_count INTEGER NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (project, digest))`,
      `CREATE TABLE files (project TEXT NOT NULL, digest TEXT NOT NULL, blob_digest TEXT NOT NULL, size BIGINT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (project, digest))`,
      `CREATE TABLE collections (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, project TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
        artifact_type TEXT NOT NULL, description TEXT, created_at TEXT NOT NULL, UNIQUE (owner, project, name))`,
      `CREATE TABLE artifact_versions (
        id TEXT PRIMARY KEY, collection_id TEXT NOT NULL REFERENCES collections (id), version_index INTEGER NOT NULL,
        artifact_type TEXT NOT NULL, digest TEXT NOT NULL, description TEXT, metadata_json TEXT NOT NULL,
        manifest_json TEXT NOT NULL, size BIGINT NOT NULL, file_count INTEGER NOT NULL, created_at TEXT NOT NULL,
        created_by_run TEXT, UNIQUE (collection_id, version_index), UNIQUE (collection_id, digest))`,
      `CREATE TABLE collection_members (
        collection_id TEXT NOT NULL REFERENCES collections (id), version_index INTEGER NOT NULL,
        artifact_version_id TEXT NOT NULL REFERENCES artifact_versions (id), linked_at TEXT NOT NULL,
        linked_by TEXT, workflow_id TEXT, PRIMARY KEY (collection_id, version_index),
        UNIQUE (collection_id, artifact_version_id))`,
      `CREATE INDEX collection_members_by_artifact ON collection_members (artifact_version_id)`,
      `CREATE TABLE aliases (collection_id TEXT NOT NULL REFERENCES collections (id), alias TEXT NOT NULL,
        version_index INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (collection_id, alias))`,
      `CREATE TABLE alias_moves (id TEXT PRIMARY KEY, collection_id TEXT NOT NULL REFERENCES collections (id),
        alias TEXT NOT NULL, sequence INTEGER NOT NULL, from_version INTEGER, to_version INTEGER, actor TEXT, workflow_id TEXT,
        moved_at TEXT NOT NULL, UNIQUE (collection_id, alias, sequence))`,
      `CREATE TABLE registries (org TEXT NOT NULL, name TEXT NOT NULL, description TEXT, artifact_types_json TEXT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (org, name))`,
      `CREATE TABLE runs (id TEXT PRIMARY KEY, entity TEXT NOT NULL, project TEXT NOT NULL, name TEXT, job_type TEXT NOT NULL,
        state TEXT NOT NULL, config_json TEXT NOT NULL, summary_json TEXT NOT NULL, workflow_id TEXT,
        started_at TEXT NOT NULL, finished_at TEXT)`,
      `CREATE TABLE run_artifacts (run_id TEXT NOT NULL REFERENCES runs (id),
        artifact_version_id TEXT NOT NULL REFERENCES artifact_versions (id), direction TEXT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (run_id, artifact_version_id, direction))`,
      `CREATE INDEX run_artifacts_by_artifact ON run_artifacts (artifact_version_id, direction)`,
      `CREATE TABLE calls (project TEXT NOT NULL, id TEXT NOT NULL, op_name TEXT NOT NULL, display_name TEXT,
        trace_id TEXT NOT NULL, parent_id TEXT, started_at TEXT NOT NULL, ended_at TEXT, inputs_json TEXT NOT NULL,
        output_json TEXT, attributes_json TEXT NOT NULL, summary_json TEXT NOT NULL, exception TEXT,
        PRIMARY KEY (project, id))`,
      `CREATE INDEX calls_by_op ON calls (project, op_name, started_at)`,
      `CREATE INDEX calls_by_trace ON calls (project, trace_id)`,
      `CREATE TABLE call_attributes (project TEXT NOT NULL, call_id TEXT NOT NULL, attribute_key TEXT NOT NULL,
        attribute_value TEXT NOT NULL, PRIMARY KEY (project, call_id, attribute_key))`,
      `CREATE INDEX call_attributes_by_value ON call_attributes (project, attribute_key, attribute_value)`,
      `CREATE TABLE feedback (id TEXT PRIMARY KEY, project TEXT NOT NULL, call_id TEXT NOT NULL, feedback_type TEXT NOT NULL,
        payload_json TEXT NOT NULL, creator TEXT, created_at TEXT NOT NULL)`,
      `CREATE INDEX feedback_by_call ON feedback (project, call_id)`,
      `CREATE TABLE idempotency_keys (idempotency_key TEXT PRIMARY KEY, operation TEXT NOT NULL,
        request_digest TEXT NOT NULL, result_json TEXT NOT NULL, created_at TEXT NOT NULL)`,
    ],
  },
  {
    version: 2,
    name: 'wandb-api',
    statements: [
      // Feedback the SDK sent before its call landed; attached (moved into feedback) when the call arrives.
      `CREATE TABLE pending_feedback (id TEXT PRIMARY KEY, project TEXT NOT NULL, call_id TEXT NOT NULL,
        feedback_type TEXT NOT NULL, payload_json TEXT NOT NULL, creator TEXT, created_at TEXT NOT NULL)`,
      `CREATE INDEX pending_feedback_by_call ON pending_feedback (project, call_id)`,
      // Artifact versions the wandb SDK is writing (CreateArtifact … CommitArtifact); artifact_version_id once committed.
      `CREATE TABLE wandb_artifacts (id TEXT PRIMARY KEY, entity TEXT NOT NULL, project TEXT NOT NULL, name TEXT NOT NULL,
        artifact_type TEXT NOT NULL, description TEXT, metadata_json TEXT NOT NULL, aliases_json TEXT NOT NULL,
        run_id TEXT, digest TEXT NOT NULL, manifest_json TEXT, state TEXT NOT NULL, artifact_version_id TEXT,
        created_at TEXT NOT NULL)`,
      `CREATE INDEX wandb_artifacts_by_version ON wandb_artifacts (artifact_version_id)`,
      // W&B's manifest (base64 MD5 digests) of an artifact version, as the SDK wrote it or as computed for a weft version.
      `CREATE TABLE wandb_manifests (artifact_version_id TEXT PRIMARY KEY, manifest_json TEXT NOT NULL)`,
    ],
  },
  {
    version: 3,
    name: 'calls in start order, calls by parent',
    statements: [
      // The Weave calls query pages every project's calls in (started_at, id) order and filters by parent in SQL; a
      // call's children (an evaluation's 10,000 predict_and_score calls, for the web UI) come in start order
      // without scanning the whole trace.
      `CREATE INDEX calls_by_start ON calls (project, started_at, id)`,
      `CREATE INDEX calls_by_parent ON calls (project, parent_id, started_at)`,
    ],
  },
  {
    version: 4,
    name: 'wandb-publications',
    statements: [
      // What the pipeline published into a remote W&B server (lib/wandb-remote): one row per local item and server,
      // with the remote ref and id, so retries skip what is there, `weft status` shows it and `weft sync` replays the rest.
      `CREATE TABLE wandb_publications (server TEXT NOT NULL, item TEXT NOT NULL, kind TEXT NOT NULL, workflow_id TEXT,
        local_ref TEXT NOT NULL, remote_ref TEXT, remote_id TEXT, state TEXT NOT NULL, detail TEXT,
        updated_at TEXT NOT NULL, PRIMARY KEY (server, item))`,
      `CREATE INDEX wandb_publications_by_workflow ON wandb_publications (workflow_id)`,
    ],
  },
];

/** Applies the migrations this database lacks; concurrent openers serialise on one lock and the later ones find nothing to do. */
export async function migrate(database: SqlDatabase): Promise<number> {
  return database.transaction(async (transaction) => {
    await transaction.lock('weft-lineage-migrations');
    await transaction.execute(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const applied = await transaction.query<{ version: number }>('SELECT version FROM schema_migrations');
    const appliedVersions = new Set(applied.map((row) => Number(row.version)));
    const newest = Math.max(0, ...appliedVersions);
    const known = MIGRATIONS[MIGRATIONS.length - 1]!.version;
    if (newest > known) {
      throw new StoreConfigurationError(
        `The lineage database has schema version ${newest} but this weft knows only up to ${known}; upgrade weft before opening it.`,
      );
    }
    for (const migration of MIGRATIONS) {
      if (appliedVersions.has(migration.version)) continue;
      for (const statement of migration.statements) await transaction.execute(statement);
      await transaction.execute('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
        migration.version,
        migration.name,
        new Date().toISOString(),
      ]);
    }
    return known;
  });
}
