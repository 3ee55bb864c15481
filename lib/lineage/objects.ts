import { bytesDigest, canonicalJson, stringDigest } from './digest';
import { InvalidValueError, NotFoundError, ValueTooLargeError } from './errors';
import { runOnce } from './idempotency';
import { formatRef, isWeaveRefString, parseRef, parseRefOfKind, parseVersionIndex, validateName } from './refs';
import { parseJson, resolveProject, timestamp, type StoreContext } from './store-context';
import type { SqlExecutor } from './sql/sql-database';
import type { TableStore } from './tables';

export interface PublishObjectInput {
  entity?: string;
  project?: string;
  /** The object's name, e.g. `ChatModel`; versions are numbered per name. */
  name: string;
  /** A JSON value; nested `weave:///…` strings are refs to other objects or tables. */
  value: unknown;
  idempotencyKey?: string;
  /**
   * Accept nested ref strings of the forms the weave SDK writes that the store does not resolve itself
   * (`weave:///…/op/<name>:<digest>`, `…/attr/rows/id/<row digest>`). Default false: every nested ref must parse.
   */
  acceptWeaveSdkRefs?: boolean;
}

export interface PublishedObject {
  ref: string;
  digest: string;
  /** Version number within the name (0, 1, 2, …). */
  version: number;
  /** False when an identical value was published before and its version is returned. */
  created: boolean;
}

export interface ObjectVersion extends PublishedObject {
  entity: string;
  project: string;
  name: string;
  value: unknown;
  createdAt: string;
  isLatest: boolean;
}

export interface ObjectSummary {
  name: string;
  versionCount: number;
  latestRef: string;
  typeName: string | null;
  updatedAt: string;
}

export interface GetObjectOptions {
  /** Replace nested object and table refs by their values (tables become row arrays), up to this depth. Default 0: refs stay strings. */
  resolveDepth?: number;
}

interface ObjectRow {
  project: string;
  name: string;
  digest: string;
  version_index: number;
  type_name: string | null;
  value_json: string;
  created_at: string;
  latest_index: number;
}

const OBJECT_COLUMNS = `o.project, o.name, o.digest, o.version_index, o.type_name, o.value_json, o.created_at,
  (SELECT MAX(l.version_index) FROM objects l WHERE l.project = o.project AND l.name = o.name) AS latest_index`;

function checkNestedRefs(value: unknown): void {
  if (isWeaveRefString(value)) {
    parseRef(value);
  } else if (Array.isArray(value)) {
    value.forEach(checkNestedRefs);
  } else if (value !== null && typeof value === 'object') {
    Object.values(value).forEach(checkNestedRefs);
  }
}

/** Weave objects: content-addressed versions of JSON values, numbered per name, `latest` moving with each new version. */
export class ObjectStore {
  constructor(
    private readonly context: StoreContext,
    private readonly tables: TableStore,
  ) {}

  /** Publishes a value under a name; an identical value returns the existing ref and creates no version. */
  async publish(input: PublishObjectInput): Promise<PublishedObject> {
    const { entity, project, key } = resolveProject(this.context, input.entity, input.project);
    const name = validateName('object name', input.name);
    const text = canonicalJson(input.value);
    const size = Buffer.byteLength(text);
    if (size > this.context.limits.maxValueBytes) {
      throw new ValueTooLargeError(
        `The value of object "${name}" is ${size} bytes; the limit is ${this.context.limits.maxValueBytes}. Store rows as a table (datasets.publish) or content as artifact files, and keep their refs in the object.`,
      );
    }
    if (!input.acceptWeaveSdkRefs) checkNestedRefs(input.value);
    const digest = stringDigest(text);
    const typeName =
      input.value !== null &&
      typeof input.value === 'object' &&
      typeof (input.value as { _type?: unknown })._type === 'string'
        ? (input.value as { _type: string })._type
        : null;
    const ref = formatRef({ kind: 'object', entity, project, name, digest });
    if (input.idempotencyKey === undefined) {
      // Republishing an unchanged value is the common case in a pipeline: answer it without taking the write lock.
      const [known] = await this.context.database.query<{ version_index: number }>(
        'SELECT version_index FROM objects WHERE project = ? AND name = ? AND digest = ?',
        [key, name, digest],
      );
      if (known) return { ref, digest, version: Number(known.version_index), created: false };
    }
    return this.context.database.transaction((transaction) =>
      runOnce(transaction, input.idempotencyKey, 'objects.publish', { key, name, digest }, async () => {
        await transaction.lock(`object:${key}/${name}`);
        // One statement answers both questions: is this digest stored already, and which number comes next.
        const [state] = await transaction.query<{ existing_index: number | null; next_index: number }>(
          `SELECT MAX(CASE WHEN digest = ? THEN version_index END) AS existing_index,
             COALESCE(MAX(version_index) + 1, 0) AS next_index FROM objects WHERE project = ? AND name = ?`,
          [digest, key, name],
        );
        if (state!.existing_index !== null)
          return { ref, digest, version: Number(state!.existing_index), created: false };
        const version = Number(state!.next_index);
        await transaction.execute(
          'INSERT INTO objects (project, name, digest, version_index, type_name, value_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          [key, name, digest, version, typeName, text, timestamp()],
        );
        return { ref, digest, version, created: true };
      }),
    );
  }

  private async findRow(refText: string, executor: SqlExecutor): Promise<ObjectRow> {
    const ref = parseRefOfKind(refText, 'object');
    const key = `${ref.entity}/${ref.project}`;
    const versionIndex = parseVersionIndex(ref.digest);
    let rows: ObjectRow[];
    if (ref.digest === 'latest') {
      rows = await executor.query<ObjectRow>(
        `SELECT ${OBJECT_COLUMNS} FROM objects o WHERE o.project = ? AND o.name = ? ORDER BY o.version_index DESC LIMIT 1`,
        [key, ref.name],
      );
    } else if (versionIndex !== undefined) {
      rows = await executor.query<ObjectRow>(
        `SELECT ${OBJECT_COLUMNS} FROM objects o WHERE o.project = ? AND o.name = ? AND o.version_index = ?`,
        [key, ref.name, versionIndex],
      );
    } else {
      rows = await executor.query<ObjectRow>(
        `SELECT ${OBJECT_COLUMNS} FROM objects o WHERE o.project = ? AND o.name = ? AND o.digest = ?`,
        [key, ref.name, ref.digest],
      );
    }
    if (!rows[0]) {
      throw new NotFoundError(
        `The object ${refText} does not exist; list versions with \`weft objects show ${ref.entity}/${ref.project}/${ref.name}\`.`,
      );
    }
    return rows[0];
  }

  private toVersion(row: ObjectRow, value: unknown): ObjectVersion {
    const [entity, project] = row.project.split('/') as [string, string];
    const version = Number(row.version_index);
    return {
      ref: formatRef({ kind: 'object', entity, project, name: row.name, digest: row.digest }),
      entity,
      project,
      name: row.name,
      digest: row.digest,
      version,
      created: false,
      value,
      createdAt: row.created_at,
      isLatest: version === Number(row.latest_index),
    };
  }

  /** Reads an object version by ref (`:digest`, `:latest` or `:vN`); nested refs resolve on demand (see options). */
  async get(ref: string, options: GetObjectOptions = {}): Promise<ObjectVersion> {
    const row = await this.findRow(ref, this.context.database);
    const value = parseJson<unknown>(row.value_json);
    return this.toVersion(row, await this.resolveNested(value, options.resolveDepth ?? 0));
  }

  /** The newest version of a name. */
  async latest(name: string, scope: { entity?: string; project?: string } = {}): Promise<ObjectVersion> {
    const { entity, project } = resolveProject(this.context, scope.entity, scope.project);
    return this.get(
      formatRef({ kind: 'object', entity, project, name: validateName('object name', name), digest: 'latest' }),
    );
  }

  /** Every version of a name, oldest first. */
  async versions(name: string, scope: { entity?: string; project?: string } = {}): Promise<ObjectVersion[]> {
    const { key } = resolveProject(this.context, scope.entity, scope.project);
    const rows = await this.context.database.query<ObjectRow>(
      `SELECT ${OBJECT_COLUMNS} FROM objects o WHERE o.project = ? AND o.name = ? ORDER BY o.version_index`,
      [key, validateName('object name', name)],
    );
    return rows.map((row) => this.toVersion(row, parseJson<unknown>(row.value_json)));
  }

  /** One line per object name in a project. */
  async list(scope: { entity?: string; project?: string } = {}): Promise<ObjectSummary[]> {
    const { entity, project, key } = resolveProject(this.context, scope.entity, scope.project);
    const rows = await this.context.database.query<{
      name: string;
      digest: string;
      type_name: string | null;
      created_at: string;
      version_count: number;
    }>(
      `SELECT o.name, o.digest, o.type_name, o.created_at,
        (SELECT COUNT(*) FROM objects c WHERE c.project = o.project AND c.name = o.name) AS version_count
       FROM objects o WHERE o.project = ? AND o.version_index =
        (SELECT MAX(l.version_index) FROM objects l WHERE l.project = o.project AND l.name = o.name)
       ORDER BY o.name`,
      [key],
    );
    return rows.map((row) => ({
      name: row.name,
      versionCount: Number(row.version_count),
      latestRef: formatRef({ kind: 'object', entity, project, name: row.name, digest: row.digest }),
      typeName: row.type_name,
      updatedAt: row.created_at,
    }));
  }

  /** Resolves a `weave:///` object or table ref string to its value (tables to row arrays). */
  async resolve(ref: string, depth = 1): Promise<unknown> {
    const parsed = parseRefOfKind(ref, 'object', 'table');
    if (parsed.kind === 'table') return (await this.tables.rows(ref)).map((row) => row.value);
    return (await this.get(ref, { resolveDepth: depth - 1 })).value;
  }

  private async resolveNested(value: unknown, depth: number): Promise<unknown> {
    if (depth <= 0) return value;
    if (isWeaveRefString(value)) {
      const parsed = parseRef(value);
      return parsed.kind === 'object' || parsed.kind === 'table' ? this.resolve(value, depth) : value;
    }
    if (Array.isArray(value)) return Promise.all(value.map((item) => this.resolveNested(item, depth)));
    if (value !== null && typeof value === 'object') {
      const entries = await Promise.all(
        Object.entries(value).map(async ([key, item]) => [key, await this.resolveNested(item, depth)] as const),
      );
      return Object.fromEntries(entries);
    }
    return value;
  }
}

export interface PublishDatasetInput {
  entity?: string;
  project?: string;
  name: string;
  rows: readonly Record<string, unknown>[];
  description?: string;
  idempotencyKey?: string;
}

export interface PatchDatasetInput {
  /** The dataset version to start from. */
  ref: string;
  replace?: Record<number, Record<string, unknown>>;
  remove?: number[];
  append?: readonly Record<string, unknown>[];
  description?: string;
  idempotencyKey?: string;
}

export interface PublishedDataset extends PublishedObject {
  tableRef: string;
  rowCount: number;
  newRowCount: number;
}

/** Weave Datasets: the rows go to a table (one stored row per distinct row), the Dataset object holds the table ref. */
export class DatasetStore {
  constructor(
    private readonly context: StoreContext,
    private readonly objects: ObjectStore,
    private readonly tables: TableStore,
  ) {}

  /** Publishes a dataset version; unchanged rows of the previous version are not written again. */
  async publish(input: PublishDatasetInput): Promise<PublishedDataset> {
    const { entity, project } = resolveProject(this.context, input.entity, input.project);
    const name = validateName('object name', input.name);
    let knownTableRef: string | undefined;
    try {
      const previous = await this.objects.latest(name, { entity, project });
      const rows = (previous.value as { rows?: unknown }).rows;
      if (typeof rows === 'string' && rows.startsWith('weave:///')) knownTableRef = rows;
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    const table = await this.tables.create({ entity, project, rows: input.rows, knownTableRef });
    // The shape Weave's Dataset saves, so the object digest matches a Dataset published by the weave SDK.
    const value = {
      _type: 'Dataset',
      _class_name: 'Dataset',
      _bases: ['Object', 'BaseModel'],
      name,
      description: input.description ?? null,
      rows: table.ref,
    };
    const published = await this.objects.publish({
      entity,
      project,
      name,
      value,
      idempotencyKey: input.idempotencyKey,
    });
    return { ...published, tableRef: table.ref, rowCount: table.rowCount, newRowCount: table.newRowCount };
  }

  /**
   * A new version of a dataset from a few row changes (replace by index, remove, append) to an existing version:
   * only the changed rows are hashed and written. Returns the same ref when nothing changed.
   */
  async patch(input: PatchDatasetInput): Promise<PublishedDataset> {
    const base = await this.objects.get(input.ref);
    const rows = (base.value as { rows?: unknown }).rows;
    if (typeof rows !== 'string') {
      throw new InvalidValueError(
        `The object ${input.ref} is not a Dataset (it has no "rows" table ref); pass a Dataset ref.`,
      );
    }
    const table = await this.tables.patch({
      tableRef: rows,
      replace: input.replace,
      remove: input.remove,
      append: input.append,
    });
    const value: Record<string, unknown> = { ...(base.value as Record<string, unknown>), rows: table.ref };
    if (input.description !== undefined) value.description = input.description;
    const published = await this.objects.publish({
      entity: base.entity,
      project: base.project,
      name: base.name,
      value,
      idempotencyKey: input.idempotencyKey,
    });
    return { ...published, tableRef: table.ref, rowCount: table.rowCount, newRowCount: table.newRowCount };
  }

  /** The rows of a dataset version, in order. */
  async rows(ref: string, options: { offset?: number; limit?: number } = {}): Promise<Record<string, unknown>[]> {
    const dataset = await this.objects.get(ref);
    const rows = (dataset.value as { rows?: unknown }).rows;
    if (typeof rows !== 'string') {
      throw new InvalidValueError(
        `The object ${ref} is not a Dataset (it has no "rows" table ref); pass a Dataset ref.`,
      );
    }
    return (await this.tables.rows(rows, options)).map((row) => row.value);
  }
}

/** Weave files: bytes addressed by Weave's file digest, kept in the blob folder. */
export class FileStore {
  constructor(private readonly context: StoreContext) {}

  /** Stores bytes and returns their Weave file digest (what a CustomWeaveType's `files` map holds). */
  async put(
    bytes: Uint8Array,
    scope: { entity?: string; project?: string } = {},
  ): Promise<{ digest: string; size: number }> {
    const { key } = resolveProject(this.context, scope.entity, scope.project);
    if (bytes.byteLength > this.context.limits.maxValueBytes) {
      throw new ValueTooLargeError(
        `The file is ${bytes.byteLength} bytes; the limit for Weave files is ${this.context.limits.maxValueBytes}. Log large files as artifact files instead.`,
      );
    }
    const digest = bytesDigest(bytes);
    const blob = await this.context.blobs.putBytes(bytes);
    await this.context.database.execute(
      'INSERT INTO files (project, digest, blob_digest, size, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      [key, digest, blob.digest, blob.size, timestamp()],
    );
    return { digest, size: blob.size };
  }

  /** Reads a file back, verified against its digest. */
  async get(digest: string, scope: { entity?: string; project?: string } = {}): Promise<Buffer> {
    const { key } = resolveProject(this.context, scope.entity, scope.project);
    const [row] = await this.context.database.query<{ blob_digest: string }>(
      'SELECT blob_digest FROM files WHERE project = ? AND digest = ?',
      [key, digest],
    );
    if (!row) throw new NotFoundError(`No file with digest ${digest} in ${key}; store it with files.put first.`);
    return this.context.blobs.readVerified(row.blob_digest);
  }
}
