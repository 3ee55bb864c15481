import fs from 'node:fs';
import path from 'node:path';
import { canonicalJson, sha256Hex } from './digest';
import {
  ArtifactTypeMismatchError,
  InvalidRefError,
  InvalidValueError,
  NotFoundError,
  ValueTooLargeError,
} from './errors';
import {
  aliasesOfVersion,
  aliasHistory,
  createCollection,
  findCollection,
  moveAlias,
  resolveVersionIndex,
  type AliasMove,
  type AliasMoveResult,
  type CollectionRow,
  type MoveAliasRequest,
} from './collections';
import { runOnce } from './idempotency';
import { formatRef, parseRef, parseRefOfKind, validateName, type ArtifactRef } from './refs';
import { newId, parseJson, resolveProject, timestamp, type StoreContext } from './store-context';
import type { SqlExecutor } from './sql/sql-database';

export interface ArtifactFileInput {
  /** Path inside the artifact, e.g. `model/weights.onnx` (relative, `/`-separated, no `..`). */
  path: string;
  /** A local file to copy in (streamed). */
  localPath?: string;
  /** Or the content itself. */
  content?: string | Uint8Array;
  /** Or a blob already in the store's blob folder (SHA-256 hex), e.g. moved there by an upload that hashed it. */
  blobDigest?: string;
}

export interface ArtifactReferenceInput {
  /** Path inside the artifact; defaults to the last segment of the URI. */
  path?: string;
  /** `weave:///…`, `file:///abs/path`, `s3://bucket/key` or `gs://bucket/key`. */
  uri: string;
  /** Checksum of the referenced content, when known (W&B computes it for files; optional here). */
  checksum?: string;
  size?: number;
}

export interface LogArtifactInput {
  entity?: string;
  project?: string;
  name: string;
  /** e.g. `model`, `dataset`, `rag-app`; every version of a name has the same type. */
  type: string;
  description?: string;
  metadata?: Record<string, unknown>;
  files?: ArtifactFileInput[];
  references?: ArtifactReferenceInput[];
  /** The run that produced it (an output edge in the lineage graph). */
  runId?: string;
  idempotencyKey?: string;
}

export interface ManifestEntry {
  path: string;
  /** SHA-256 hex of a stored file. */
  digest?: string;
  /** URI of a reference entry. */
  ref?: string;
  checksum?: string;
  size: number;
}

export interface LoggedArtifact {
  ref: string;
  version: number;
  /** Manifest digest: identical content gives the same digest and the same version. */
  digest: string;
  created: boolean;
}

export interface ArtifactVersion {
  /** `wandb-artifact:///<entity>/<project>/<name>:vN`. */
  ref: string;
  id: string;
  entity: string;
  project: string;
  name: string;
  version: number;
  type: string;
  digest: string;
  description: string | null;
  metadata: Record<string, unknown>;
  manifest: ManifestEntry[];
  size: number;
  aliases: string[];
  createdAt: string;
  createdByRun: string | null;
}

export interface ArtifactCollectionSummary {
  name: string;
  type: string;
  versionCount: number;
  latestRef: string | null;
  aliases: string[];
  createdAt: string;
}

export interface DownloadResult {
  directory: string;
  files: string[];
  /** Reference entries are not fetched: the caller resolves them (a weave ref, a bucket URL). */
  references: ManifestEntry[];
}

interface ArtifactVersionRow {
  id: string;
  collection_id: string;
  version_index: number;
  artifact_type: string;
  digest: string;
  description: string | null;
  metadata_json: string;
  manifest_json: string;
  size: number;
  created_at: string;
  created_by_run: string | null;
  owner: string;
  project: string;
  name: string;
}

const VERSION_COLUMNS = `v.id, v.collection_id, v.version_index, v.artifact_type, v.digest, v.description, v.metadata_json,
  v.manifest_json, v.size, v.created_at, v.created_by_run, c.owner, c.project, c.name`;
const REFERENCE_SCHEMES = ['weave:///', 'file:///', 's3://', 'gs://'];
const MAX_MANIFEST_ENTRIES = 100_000;

/** Checks a path inside an artifact: relative, `/`-separated, no `..`, no empty segments, no control characters. */
export function validateArtifactPath(entryPath: unknown): string {
  const rule =
    'use a relative path such as "model/weights.onnx": "/"-separated, no "..", no leading "/", at most 512 characters';
  if (typeof entryPath !== 'string' || entryPath.length === 0)
    throw new InvalidValueError(`An artifact file path is empty; ${rule}.`);
  if (entryPath.length > 512)
    throw new InvalidValueError(`The artifact file path "${entryPath.slice(0, 40)}…" is too long; ${rule}.`);
  if (/[\u0000-\u001f\u007f]/.test(entryPath))
    throw new InvalidValueError(
      `The artifact file path ${JSON.stringify(entryPath)} contains a control character; ${rule}.`,
    );
  if (entryPath.startsWith('/') || /^[A-Za-z]:/.test(entryPath) || entryPath.includes('\\')) {
    throw new InvalidValueError(`The artifact file path "${entryPath}" is absolute or uses "\\"; ${rule}.`);
  }
  const segments = entryPath.split('/');
  if (segments.some((segment) => segment === '..' || segment === '.' || segment === '')) {
    throw new InvalidValueError(
      `The artifact file path "${entryPath}" contains "..", "." or an empty segment, which could escape the download folder; ${rule}.`,
    );
  }
  return entryPath;
}

function validateReferenceUri(uri: unknown): string {
  if (typeof uri !== 'string' || !REFERENCE_SCHEMES.some((scheme) => uri.startsWith(scheme))) {
    throw new InvalidValueError(
      `The artifact reference ${JSON.stringify(uri)} has an unsupported scheme; use one of ${REFERENCE_SCHEMES.map((scheme) => `${scheme}…`).join(', ')}.`,
    );
  }
  if (uri.startsWith('weave:///')) parseRef(uri);
  if (uri.startsWith('file:///') && uri.split('/').includes('..')) {
    throw new InvalidValueError(`The file reference ${uri} contains ".."; reference an absolute path without "..".`);
  }
  if (/^(s3|gs):\/\/$/.test(uri) || /^(s3|gs):\/\/\//.test(uri)) {
    throw new InvalidValueError(
      `The bucket reference ${uri} names no bucket; write s3://bucket/key or gs://bucket/key.`,
    );
  }
  return uri;
}

/** W&B Models artifacts: typed, versioned file sets deduplicated by manifest digest, with aliases. */
/** Resolves a registry collection version to the artifact version it links (supplied by the registry). */
export type LinkedArtifactResolver = (
  executor: SqlExecutor,
  registryRef: string,
) => Promise<{ artifact: ArtifactVersion }>;

export class ArtifactStore {
  constructor(
    private readonly context: StoreContext,
    private readonly resolveLinked?: LinkedArtifactResolver,
  ) {}

  /** Logs a version; identical content (same manifest digest) returns the existing version instead of a new one. */
  async log(input: LogArtifactInput): Promise<LoggedArtifact> {
    const { entity, project } = resolveProject(this.context, input.entity, input.project);
    const name = validateName('artifact name', input.name);
    const type = validateName('artifact type', input.type);
    const metadata = input.metadata ?? {};
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new InvalidValueError('Artifact metadata must be a plain object of JSON values, e.g. {"base_model": "…"}.');
    }
    const metadataJson = canonicalJson(metadata);
    if (Buffer.byteLength(metadataJson) > 1024 * 1024) {
      throw new ValueTooLargeError('Artifact metadata is over 1 MiB; keep metadata small and put content in files.');
    }
    const files = input.files ?? [];
    const references = input.references ?? [];
    if (files.length + references.length > MAX_MANIFEST_ENTRIES) {
      throw new ValueTooLargeError(
        `An artifact may hold at most ${MAX_MANIFEST_ENTRIES} entries; split it or add a folder archive.`,
      );
    }
    // Validate everything before writing any blob, so bad input leaves nothing behind.
    const seen = new Set<string>();
    const checkUnique = (entryPath: string): void => {
      if (seen.has(entryPath))
        throw new InvalidValueError(`The artifact has two entries at "${entryPath}"; each path may appear once.`);
      seen.add(entryPath);
    };
    for (const file of files) {
      checkUnique(validateArtifactPath(file.path));
      const sources = [file.localPath, file.content, file.blobDigest].filter((source) => source !== undefined);
      if (sources.length !== 1) {
        throw new InvalidValueError(
          `The artifact file "${file.path}" needs exactly one of localPath, content or blobDigest.`,
        );
      }
      if (file.blobDigest !== undefined && !fs.existsSync(this.context.blobs.pathOf(file.blobDigest))) {
        throw new InvalidValueError(
          `The artifact file "${file.path}" names blob ${file.blobDigest}, which is not stored.`,
        );
      }
      if (file.localPath !== undefined && !fs.existsSync(file.localPath)) {
        throw new InvalidValueError(
          `The artifact file "${file.path}" points at ${file.localPath}, which does not exist; pass an existing file.`,
        );
      }
    }
    const referenceEntries: ManifestEntry[] = references.map((reference) => {
      const uri = validateReferenceUri(reference.uri);
      const entryPath = validateArtifactPath(reference.path ?? uri.split('/').filter(Boolean).pop() ?? 'reference');
      checkUnique(entryPath);
      return {
        path: entryPath,
        ref: uri,
        size: reference.size ?? 0,
        ...(reference.checksum === undefined ? {} : { checksum: reference.checksum }),
      };
    });
    // Checks that need the database run before any blob is written, so rejected input leaves no file behind;
    // the transaction below checks again, in case another writer got in between.
    const existingCollection = await findCollection(this.context.database, entity, project, name);
    if (existingCollection && existingCollection.artifact_type !== type) {
      throw new ArtifactTypeMismatchError(
        `The artifact ${entity}/${project}/${name} holds type "${existingCollection.artifact_type}", not "${type}"; log it with type "${existingCollection.artifact_type}" or choose another name.`,
      );
    }
    if (input.runId !== undefined) await requireRun(this.context.database, input.runId);
    const fileEntries: ManifestEntry[] = [];
    for (const file of files) {
      const stored =
        file.blobDigest !== undefined
          ? { digest: file.blobDigest, size: (await fs.promises.stat(this.context.blobs.pathOf(file.blobDigest))).size }
          : file.localPath !== undefined
            ? await this.context.blobs.putFile(file.localPath)
            : await this.context.blobs.putBytes(
                typeof file.content === 'string' ? Buffer.from(file.content) : file.content!,
              );
      fileEntries.push({ path: file.path, digest: stored.digest, size: stored.size });
    }
    const manifest = [...fileEntries, ...referenceEntries].sort((left, right) => (left.path < right.path ? -1 : 1));
    const digest = sha256Hex(canonicalJson(manifest));
    const size = manifest.reduce((total, entry) => total + entry.size, 0);
    const displayName = `The artifact ${entity}/${project}/${name}`;
    return this.context.database.transaction((transaction) =>
      runOnce(transaction, input.idempotencyKey, 'artifacts.log', { entity, project, name, type, digest }, async () => {
        await transaction.lock(`collection:${entity}/${project}/${name}`);
        if (input.runId !== undefined) await requireRun(transaction, input.runId);
        let collection = await findCollection(transaction, entity, project, name);
        if (!collection) {
          collection = await createCollection(transaction, {
            owner: entity,
            project,
            name,
            kind: 'sequence',
            artifactType: type,
          });
        } else if (collection.artifact_type !== type) {
          throw new ArtifactTypeMismatchError(
            `${displayName} holds type "${collection.artifact_type}", not "${type}"; log it with type "${collection.artifact_type}" or choose another name.`,
          );
        }
        const [existing] = await transaction.query<{ id: string; version_index: number }>(
          'SELECT id, version_index FROM artifact_versions WHERE collection_id = ? AND digest = ?',
          [collection.id, digest],
        );
        let versionId: string;
        let version: number;
        let created = false;
        if (existing) {
          versionId = existing.id;
          version = Number(existing.version_index);
        } else {
          const [next] = await transaction.query<{ next_index: number }>(
            'SELECT COALESCE(MAX(version_index) + 1, 0) AS next_index FROM artifact_versions WHERE collection_id = ?',
            [collection.id],
          );
          versionId = newId();
          version = Number(next!.next_index);
          const createdAt = timestamp();
          await transaction.execute(
            `INSERT INTO artifact_versions (id, collection_id, version_index, artifact_type, digest, description, metadata_json,
              manifest_json, size, file_count, created_at, created_by_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [
              versionId,
              collection.id,
              version,
              type,
              digest,
              input.description ?? null,
              metadataJson,
              JSON.stringify(manifest),
              size,
              manifest.length,
              createdAt,
              input.runId ?? null,
            ],
          );
          await transaction.execute(
            'INSERT INTO collection_members (collection_id, version_index, artifact_version_id, linked_at, linked_by, workflow_id) VALUES (?, ?, ?, ?, ?, ?)',
            [collection.id, version, versionId, createdAt, input.runId ?? null, null],
          );
          created = true;
        }
        if (input.runId !== undefined) {
          await transaction.execute(
            'INSERT INTO run_artifacts (run_id, artifact_version_id, direction, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
            [input.runId, versionId, 'output', timestamp()],
          );
        }
        return {
          ref: formatRef({ kind: 'artifact', entity, project, name, version: `v${version}` }),
          version,
          digest,
          created,
        };
      }),
    );
  }

  /** Reads an artifact version by ref (`:vN`, `:latest` or a custom alias); a registry ref gives the version it links. */
  async get(ref: string): Promise<ArtifactVersion> {
    return this.getWith(this.context.database, ref);
  }

  /** @internal Reads with a given executor, so other parts of the store can read inside their transaction. */
  async getWith(executor: SqlExecutor, refText: string): Promise<ArtifactVersion> {
    const parsed = parseRefOfKind(refText, 'artifact', 'registry');
    if (parsed.kind === 'registry') {
      // As in W&B, a registry ref stands for the artifact version it links.
      if (!this.resolveLinked)
        throw new InvalidRefError(
          `Registry refs such as ${refText} need the registry; open the store with openLineageStore.`,
        );
      return (await this.resolveLinked(executor, refText)).artifact;
    }
    const ref = parsed;
    const { collection, versionIndex } = await this.locate(executor, ref, refText);
    const [row] = await executor.query<ArtifactVersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM artifact_versions v JOIN collections c ON c.id = v.collection_id
       WHERE v.collection_id = ? AND v.version_index = ?`,
      [collection.id, versionIndex],
    );
    return this.toVersion(executor, row!);
  }

  /** @internal Reads an artifact version by its row id. */
  async getById(executor: SqlExecutor, id: string): Promise<ArtifactVersion> {
    const [row] = await executor.query<ArtifactVersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM artifact_versions v JOIN collections c ON c.id = v.collection_id WHERE v.id = ?`,
      [id],
    );
    if (!row) throw new NotFoundError(`No artifact version has id ${id}.`);
    return this.toVersion(executor, row);
  }

  private async locate(
    executor: SqlExecutor,
    ref: ArtifactRef,
    refText: string,
  ): Promise<{ collection: CollectionRow; versionIndex: number }> {
    const collection = await findCollection(executor, ref.entity, ref.project, ref.name);
    if (!collection || collection.kind !== 'sequence') {
      throw new NotFoundError(
        `The artifact ${ref.entity}/${ref.project}/${ref.name} does not exist (from ${refText}); list artifacts with \`weft artifacts ls\`.`,
      );
    }
    const versionIndex = await resolveVersionIndex(
      executor,
      collection,
      ref.version ?? 'latest',
      `The artifact ${ref.entity}/${ref.project}/${ref.name}`,
    );
    return { collection, versionIndex };
  }

  private async toVersion(executor: SqlExecutor, row: ArtifactVersionRow): Promise<ArtifactVersion> {
    const version = Number(row.version_index);
    return {
      ref: formatRef({
        kind: 'artifact',
        entity: row.owner,
        project: row.project,
        name: row.name,
        version: `v${version}`,
      }),
      id: row.id,
      entity: row.owner,
      project: row.project,
      name: row.name,
      version,
      type: row.artifact_type,
      digest: row.digest,
      description: row.description,
      metadata: parseJson<Record<string, unknown>>(row.metadata_json),
      manifest: parseJson<ManifestEntry[]>(row.manifest_json),
      size: Number(row.size),
      aliases: await aliasesOfVersion(executor, row.collection_id, version),
      createdAt: row.created_at,
      createdByRun: row.created_by_run,
    };
  }

  /** Records that a run used this version as input; returns the resolved version. */
  async use(ref: string, options: { runId: string }): Promise<ArtifactVersion> {
    return this.context.database.transaction(async (transaction) => {
      await requireRun(transaction, options.runId);
      const version = await this.getWith(transaction, ref);
      await transaction.execute(
        'INSERT INTO run_artifacts (run_id, artifact_version_id, direction, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
        [options.runId, version.id, 'input', timestamp()],
      );
      return version;
    });
  }

  /** Writes the version's files under `directory` (verified against their digests); returns what was written. */
  async download(ref: string, directory: string): Promise<DownloadResult> {
    const version = await this.get(ref);
    const root = path.resolve(directory);
    const files: string[] = [];
    for (const entry of version.manifest) {
      if (entry.digest === undefined) continue;
      const destination = path.resolve(root, validateArtifactPath(entry.path));
      // Paths are validated at log time; this guards a database edited by hand.
      if (!destination.startsWith(root + path.sep))
        throw new InvalidValueError(`The artifact path "${entry.path}" escapes ${root}; refusing to write it.`);
      await this.context.blobs.copyVerified(entry.digest, destination);
      files.push(destination);
    }
    return { directory: root, files, references: version.manifest.filter((entry) => entry.ref !== undefined) };
  }

  /** Moves a custom alias of an artifact collection (compare-and-set; see MoveAliasRequest). */
  async moveAlias(collectionRef: string, request: MoveAliasRequest): Promise<AliasMoveResult> {
    const ref = parseRefOfKind(collectionRef, 'artifact');
    return this.context.database.transaction(async (transaction) => {
      const collection = await findCollection(transaction, ref.entity, ref.project, ref.name);
      if (!collection)
        throw new NotFoundError(
          `The artifact ${ref.entity}/${ref.project}/${ref.name} does not exist; log a version before giving it aliases.`,
        );
      return moveAlias(transaction, collection, request, `The artifact ${ref.entity}/${ref.project}/${ref.name}`);
    });
  }

  /** Alias moves of an artifact collection, oldest first. */
  async aliasHistory(collectionRef: string, alias?: string): Promise<AliasMove[]> {
    const ref = parseRefOfKind(collectionRef, 'artifact');
    const collection = await findCollection(this.context.database, ref.entity, ref.project, ref.name);
    if (!collection) throw new NotFoundError(`The artifact ${ref.entity}/${ref.project}/${ref.name} does not exist.`);
    return aliasHistory(this.context.database, collection.id, alias);
  }

  /** Artifact collections of a project, optionally of one type. */
  async list(scope: { entity?: string; project?: string; type?: string } = {}): Promise<ArtifactCollectionSummary[]> {
    const { entity, project } = resolveProject(this.context, scope.entity, scope.project);
    const rows = await this.context.database.query<CollectionRow & { version_count: number; latest: number | null }>(
      `SELECT c.id, c.name, c.artifact_type, c.created_at,
        (SELECT COUNT(*) FROM collection_members m WHERE m.collection_id = c.id) AS version_count,
        (SELECT MAX(m.version_index) FROM collection_members m WHERE m.collection_id = c.id) AS latest
       FROM collections c WHERE c.owner = ? AND c.project = ? AND c.kind = 'sequence'${scope.type === undefined ? '' : ' AND c.artifact_type = ?'}
       ORDER BY c.name`,
      scope.type === undefined ? [entity, project] : [entity, project, scope.type],
    );
    const summaries: ArtifactCollectionSummary[] = [];
    for (const row of rows) {
      const aliases = await this.context.database.query<{ alias: string; version_index: number }>(
        'SELECT alias, version_index FROM aliases WHERE collection_id = ? ORDER BY alias',
        [row.id],
      );
      summaries.push({
        name: row.name,
        type: row.artifact_type,
        versionCount: Number(row.version_count),
        latestRef:
          row.latest === null
            ? null
            : formatRef({ kind: 'artifact', entity, project, name: row.name, version: `v${row.latest}` }),
        aliases: aliases.map((alias) => `${alias.alias}=v${alias.version_index}`),
        createdAt: row.created_at,
      });
    }
    return summaries;
  }

  /** Every version of an artifact collection, oldest first. */
  async versions(collectionRef: string): Promise<ArtifactVersion[]> {
    const ref = parseRefOfKind(collectionRef, 'artifact');
    const collection = await findCollection(this.context.database, ref.entity, ref.project, ref.name);
    if (!collection)
      throw new NotFoundError(
        `The artifact ${ref.entity}/${ref.project}/${ref.name} does not exist; list artifacts with \`weft artifacts ls\`.`,
      );
    const rows = await this.context.database.query<ArtifactVersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM artifact_versions v JOIN collections c ON c.id = v.collection_id WHERE v.collection_id = ? ORDER BY v.version_index`,
      [collection.id],
    );
    return Promise.all(rows.map((row) => this.toVersion(this.context.database, row)));
  }
}

export async function requireRun(executor: SqlExecutor, runId: string): Promise<void> {
  const [run] = await executor.query('SELECT 1 AS present FROM runs WHERE id = ?', [runId]);
  if (!run)
    throw new NotFoundError(
      `The run ${runId} does not exist; create it with runs.create before logging or using artifacts in it.`,
    );
}
