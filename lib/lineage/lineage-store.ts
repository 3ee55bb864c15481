import path from 'node:path';
import { ArtifactStore } from './artifacts';
import { BlobStore } from './blob-store';
import { CallStore } from './calls';
import { StoreConfigurationError } from './errors';
import { LineageWalker } from './lineage-graph';
import { DatasetStore, FileStore, ObjectStore } from './objects';
import { RegistryStore } from './registry';
import { RunStore } from './runs';
import { migrate } from './sql/migrations';
import { PostgresDatabase } from './sql/postgres-database';
import type { SqlDatabase, SqlDialect } from './sql/sql-database';
import { SqliteDatabase, type SqliteOptions } from './sql/sqlite-database';
import type { StoreContext, StoreDefaults, StoreLimits } from './store-context';
import { TableStore } from './tables';

export interface LineageStoreOptions {
  /** Folder for artifact and Weave file blobs. Default: `blobs` next to the SQLite file; for PostgreSQL `$WEFT_HOME/blobs` (a folder all hosts share). */
  blobDirectory?: string;
  /** Entity, project and org used when an operation names none. Default: weft / rag-demo / weft. */
  defaults?: Partial<StoreDefaults>;
  limits?: Partial<StoreLimits>;
  /** SQLite lock waiting: busy timeout and whole-transaction retries. */
  sqlite?: SqliteOptions;
}

const DEFAULT_LIMITS: StoreLimits = {
  maxValueBytes: 16 * 1024 * 1024,
  maxRowBytes: 1024 * 1024,
  largeCallValueBytes: 64 * 1024,
};

/** The system of record: Weave objects, tables and calls; W&B artifacts, registry and runs; the lineage graph over them. */
export class LineageStore {
  /** Weave objects: publish / get / latest / versions / list. */
  readonly objects: ObjectStore;
  /** Weave tables: rows stored once each, by digest. */
  readonly tables: TableStore;
  /** Weave Datasets on top of tables. */
  readonly datasets: DatasetStore;
  /** Weave files (content-addressed bytes). */
  readonly files: FileStore;
  /** W&B artifacts: log / get / use / download / moveAlias. */
  readonly artifacts: ArtifactStore;
  /** W&B Registry: create / link / resolve / moveAlias / aliasHistory. */
  readonly registry: RegistryStore;
  /** W&B runs: create / finish. */
  readonly runs: RunStore;
  /** Weave calls: upsert / query / addFeedback. */
  readonly calls: CallStore;
  /** The lineage graph: walk. */
  readonly lineage: LineageWalker;

  constructor(
    private readonly context: StoreContext,
    /** The lineage URL with any password masked. */
    readonly url: string,
  ) {
    this.tables = new TableStore(context);
    this.objects = new ObjectStore(context, this.tables);
    this.datasets = new DatasetStore(context, this.objects, this.tables);
    this.files = new FileStore(context);
    // The registry is created just below; the resolver is only called later, once both exist.
    this.artifacts = new ArtifactStore(context, (executor, ref) => this.registry.resolveWith(executor, ref));
    this.registry = new RegistryStore(context, this.artifacts);
    this.runs = new RunStore(context);
    this.calls = new CallStore(context, this.objects);
    this.lineage = new LineageWalker(context, this.artifacts, this.registry, this.objects);
  }

  /** Entity, project and org that operations naming none are written under. */
  get defaults(): StoreDefaults {
    return this.context.defaults;
  }

  /** The ref of a call by id, in the default entity/project. */
  callRef(id: string): string {
    return `weave:///${this.context.defaults.entity}/${this.context.defaults.project}/call/${id}`;
  }

  get dialect(): SqlDialect {
    return this.context.database.dialect;
  }

  /** The SQL layer underneath, for maintenance tools and tests that need to reach below the domain API. */
  get database(): SqlDatabase {
    return this.context.database;
  }

  get blobDirectory(): string {
    return this.context.blobs.root;
  }

  /** Where the blob of a SHA-256 digest lives (it may not exist), for servers that stream or place blobs themselves. */
  blobPathOf(digest: string): string {
    return this.context.blobs.pathOf(digest);
  }

  /** Row counts per table: what `weft` status shows, and what tests compare before and after a rejected operation. */
  async counts(): Promise<Record<string, number>> {
    const tables = [
      'objects',
      'table_rows',
      'tables',
      'files',
      'collections',
      'artifact_versions',
      'collection_members',
      'aliases',
      'alias_moves',
      'registries',
      'runs',
      'run_artifacts',
      'calls',
      'call_attributes',
      'feedback',
      'idempotency_keys',
    ];
    const counts: Record<string, number> = {};
    for (const table of tables) {
      const [row] = await this.context.database.query<{ count: number }>(`SELECT COUNT(*) AS count FROM ${table}`);
      counts[table] = Number(row!.count);
    }
    return counts;
  }

  async close(): Promise<void> {
    await this.context.database.close();
  }
}

function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/**
 * Opens the lineage store at `url` (`sqlite:///abs/path.db` or `postgres://user:pass@host:port/db[?schema=name]`)
 * and applies pending migrations.
 */
export async function openLineageStore(url: string, options: LineageStoreOptions = {}): Promise<LineageStore> {
  let database: SqlDatabase;
  let blobDirectory = options.blobDirectory;
  if (url.startsWith('sqlite://')) {
    const filePath = url.slice('sqlite://'.length);
    if (!path.isAbsolute(filePath)) {
      throw new StoreConfigurationError(
        `The SQLite lineage URL ${url} must hold an absolute path: sqlite:///abs/path/lineage.db.`,
      );
    }
    database = new SqliteDatabase(filePath, options.sqlite);
    blobDirectory ??= path.join(path.dirname(filePath), 'blobs');
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // Every host must see the same blobs: the caller names a folder on the shared volume ($WEFT_HOME/blobs).
    if (blobDirectory === undefined) {
      throw new StoreConfigurationError(
        `The PostgreSQL lineage store ${maskPassword(url)} needs a blob folder every host sees: pass blobDirectory ` +
          '(weft passes $WEFT_HOME/blobs).',
      );
    }
    const postgres = new PostgresDatabase(url);
    database = postgres;
    try {
      await postgres.prepare();
    } catch (error) {
      await postgres.close();
      throw error;
    }
  } else {
    throw new StoreConfigurationError(
      `The lineage URL ${maskPassword(url)} is not supported; use sqlite:///abs/path/lineage.db or postgres://user:pass@host:port/db.`,
    );
  }
  try {
    await migrate(database);
  } catch (error) {
    await database.close();
    throw error;
  }
  const context: StoreContext = {
    database,
    blobs: new BlobStore(path.resolve(blobDirectory)),
    defaults: { entity: 'weft', project: 'rag-demo', org: 'weft', ...options.defaults },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
  };
  return new LineageStore(context, maskPassword(url));
}
