import { ArtifactTypeMismatchError, InvalidRefError, NotFoundError } from './errors';
import type { ArtifactStore, ArtifactVersion } from './artifacts';
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
import { formatRef, parseRefOfKind, REGISTRY_PROJECT_PREFIX, validateName, type RegistryRef } from './refs';
import { parseJson, timestamp, type StoreContext } from './store-context';
import type { SqlExecutor, SqlTransaction } from './sql/sql-database';

export interface Registry {
  org: string;
  name: string;
  description: string | null;
  /** Artifact types its collections accept; empty means any (each collection still holds one type). */
  artifactTypes: string[];
  createdAt: string;
}

export interface CreateRegistryInput {
  org?: string;
  name: string;
  description?: string;
  artifactTypes?: string[];
}

export interface LinkInput {
  /** The artifact version to link: `wandb-artifact:///<entity>/<project>/<name>:<vN or alias>`. */
  artifact: string;
  /** The registry collection: `wandb-artifact:///<org>/wandb-registry-<Registry>/<Collection>` (no version). */
  target: string;
  actor?: string;
  workflowId?: string;
  idempotencyKey?: string;
}

export interface LinkResult {
  /** `wandb-artifact:///<org>/wandb-registry-<Registry>/<Collection>:vN`. */
  ref: string;
  version: number;
  /** False when this artifact version was linked before: the same vN comes back. */
  created: boolean;
}

export interface LinkedVersion {
  ref: string;
  org: string;
  registry: string;
  collection: string;
  version: number;
  aliases: string[];
  linkedAt: string;
  linkedBy: string | null;
  workflowId: string | null;
  artifact: ArtifactVersion;
}

/** An alias move of a registry collection as one atomic operation (see RegistryStore.promote). */
export interface PromoteRequest {
  /** The registry collection: `wandb-artifact:///<org>/wandb-registry-<Registry>/<Collection>` (no version). */
  collection: string;
  /** The version the alias moves to: `vN` or N. */
  version: string | number;
  alias: string;
  /**
   * Compare-and-set: where the alias must point now (`vN`, N, null for unassigned), else AliasConflictError; `'any'`
   * moves it from wherever it points.
   */
  expected: string | number | null | 'any';
  actor?: string;
  workflowId?: string;
}

export interface RegistryCollectionSummary {
  name: string;
  type: string;
  versionCount: number;
  aliases: string[];
  createdAt: string;
}

/** W&B Registry: named registries whose collections link artifact versions, with aliases moved by compare-and-set. */
export class RegistryStore {
  constructor(
    private readonly context: StoreContext,
    private readonly artifacts: ArtifactStore,
  ) {}

  /** Creates a registry, or returns the existing one of that name (creating is idempotent). */
  async create(input: CreateRegistryInput): Promise<Registry> {
    const org = validateName('org', input.org ?? this.context.defaults.org);
    const name = validateName('registry name', input.name);
    const artifactTypes = (input.artifactTypes ?? []).map((type) => validateName('artifact type', type));
    return this.context.database.transaction((transaction) =>
      this.ensureRegistry(transaction, org, name, input.description, artifactTypes),
    );
  }

  private async ensureRegistry(
    transaction: SqlTransaction,
    org: string,
    name: string,
    description: string | undefined,
    artifactTypes: string[],
  ): Promise<Registry> {
    await transaction.lock(`registry:${org}/${name}`);
    const existing = await this.find(transaction, org, name);
    if (existing) return existing;
    const createdAt = timestamp();
    await transaction.execute(
      'INSERT INTO registries (org, name, description, artifact_types_json, created_at) VALUES (?, ?, ?, ?, ?)',
      [org, name, description ?? null, JSON.stringify(artifactTypes), createdAt],
    );
    return { org, name, description: description ?? null, artifactTypes, createdAt };
  }

  private async find(executor: SqlExecutor, org: string, name: string): Promise<Registry | undefined> {
    const [row] = await executor.query<{ description: string | null; artifact_types_json: string; created_at: string }>(
      'SELECT description, artifact_types_json, created_at FROM registries WHERE org = ? AND name = ?',
      [org, name],
    );
    return row
      ? {
          org,
          name,
          description: row.description,
          artifactTypes: parseJson<string[]>(row.artifact_types_json),
          createdAt: row.created_at,
        }
      : undefined;
  }

  /** Registries of an org, by name. */
  async list(org?: string): Promise<Registry[]> {
    const owner = validateName('org', org ?? this.context.defaults.org);
    const rows = await this.context.database.query<{
      name: string;
      description: string | null;
      artifact_types_json: string;
      created_at: string;
    }>('SELECT name, description, artifact_types_json, created_at FROM registries WHERE org = ? ORDER BY name', [
      owner,
    ]);
    return rows.map((row) => ({
      org: owner,
      name: row.name,
      description: row.description,
      artifactTypes: parseJson<string[]>(row.artifact_types_json),
      createdAt: row.created_at,
    }));
  }

  /** A registry and its collections; NotFoundError lists the registries that exist. */
  async show(name: string, org?: string): Promise<{ registry: Registry; collections: RegistryCollectionSummary[] }> {
    const owner = validateName('org', org ?? this.context.defaults.org);
    const registry = await this.requireRegistry(this.context.database, owner, validateName('registry name', name));
    const rows = await this.context.database.query<CollectionRow & { version_count: number }>(
      `SELECT c.id, c.name, c.artifact_type, c.created_at,
        (SELECT COUNT(*) FROM collection_members m WHERE m.collection_id = c.id) AS version_count
       FROM collections c WHERE c.owner = ? AND c.project = ? AND c.kind = 'portfolio' ORDER BY c.name`,
      [owner, REGISTRY_PROJECT_PREFIX + registry.name],
    );
    const collections: RegistryCollectionSummary[] = [];
    for (const row of rows) {
      const aliases = await this.context.database.query<{ alias: string; version_index: number }>(
        'SELECT alias, version_index FROM aliases WHERE collection_id = ? ORDER BY alias',
        [row.id],
      );
      collections.push({
        name: row.name,
        type: row.artifact_type,
        versionCount: Number(row.version_count),
        aliases: aliases.map((alias) => `${alias.alias}=v${alias.version_index}`),
        createdAt: row.created_at,
      });
    }
    return { registry, collections };
  }

  private async requireRegistry(executor: SqlExecutor, org: string, name: string): Promise<Registry> {
    const registry = await this.find(executor, org, name);
    if (registry) return registry;
    const known = await executor.query<{ name: string }>('SELECT name FROM registries WHERE org = ? ORDER BY name', [
      org,
    ]);
    throw new NotFoundError(
      `The registry "${name}" does not exist in org "${org}"; known registries: ${known.length ? known.map((row) => `"${row.name}"`).join(', ') : 'none'}. Create it with \`weft registry create "${name}"\`.`,
    );
  }

  private async requireCollection(executor: SqlExecutor, ref: RegistryRef): Promise<CollectionRow> {
    await this.requireRegistry(executor, ref.org, ref.registry);
    const collection = await findCollection(executor, ref.org, REGISTRY_PROJECT_PREFIX + ref.registry, ref.collection);
    if (!collection) {
      throw new NotFoundError(
        `The registry "${ref.registry}" has no collection "${ref.collection}"; link an artifact version to it first (registry.link).`,
      );
    }
    return collection;
  }

  /**
   * Links an artifact version into a registry collection (both created on demand) and returns the collection's vN.
   * Linking the same artifact version again returns the same vN.
   */
  async link(input: LinkInput): Promise<LinkResult> {
    const target = parseRefOfKind(input.target, 'registry');
    if (target.version !== undefined) {
      throw new InvalidRefError(
        `The link target ${input.target} names a version; link into the collection itself (drop ":${target.version}").`,
      );
    }
    parseRefOfKind(input.artifact, 'artifact');
    return this.context.database.transaction((transaction) =>
      runOnce(
        transaction,
        input.idempotencyKey,
        'registry.link',
        { artifact: input.artifact, target: input.target },
        async () => {
          const source = await this.artifacts.getWith(transaction, input.artifact);
          const registry = await this.ensureRegistry(transaction, target.org, target.registry, undefined, []);
          if (registry.artifactTypes.length > 0 && !registry.artifactTypes.includes(source.type)) {
            throw new ArtifactTypeMismatchError(
              `The registry "${registry.name}" accepts artifact types ${registry.artifactTypes.map((type) => `"${type}"`).join(', ')}; ${source.ref} has type "${source.type}". Link it to a registry for "${source.type}".`,
            );
          }
          const project = REGISTRY_PROJECT_PREFIX + target.registry;
          await transaction.lock(`collection:${target.org}/${project}/${target.collection}`);
          let collection = await findCollection(transaction, target.org, project, target.collection);
          if (!collection) {
            collection = await createCollection(transaction, {
              owner: target.org,
              project,
              name: target.collection,
              kind: 'portfolio',
              artifactType: source.type,
            });
          } else if (collection.artifact_type !== source.type) {
            throw new ArtifactTypeMismatchError(
              `The collection "${target.collection}" in registry "${target.registry}" accepts type "${collection.artifact_type}"; ${source.ref} has type "${source.type}". Link it to a collection of type "${source.type}".`,
            );
          }
          const [existing] = await transaction.query<{ version_index: number }>(
            'SELECT version_index FROM collection_members WHERE collection_id = ? AND artifact_version_id = ?',
            [collection.id, source.id],
          );
          const refFor = (version: number): string => formatRef({ ...target, version: `v${version}` });
          if (existing)
            return {
              ref: refFor(Number(existing.version_index)),
              version: Number(existing.version_index),
              created: false,
            };
          const [next] = await transaction.query<{ next_index: number }>(
            'SELECT COALESCE(MAX(version_index) + 1, 0) AS next_index FROM collection_members WHERE collection_id = ?',
            [collection.id],
          );
          const version = Number(next!.next_index);
          await transaction.execute(
            'INSERT INTO collection_members (collection_id, version_index, artifact_version_id, linked_at, linked_by, workflow_id) VALUES (?, ?, ?, ?, ?, ?)',
            [collection.id, version, source.id, timestamp(), input.actor ?? null, input.workflowId ?? null],
          );
          return { ref: refFor(version), version, created: true };
        },
      ),
    );
  }

  /** Resolves `…/<Collection>:<vN, latest or alias>` to the linked version and its source artifact. */
  async resolve(ref: string): Promise<LinkedVersion> {
    return this.resolveWith(this.context.database, ref);
  }

  /** @internal */
  async resolveWith(executor: SqlExecutor, refText: string): Promise<LinkedVersion> {
    const ref = parseRefOfKind(refText, 'registry');
    const collection = await this.requireCollection(executor, ref);
    const version = await resolveVersionIndex(
      executor,
      collection,
      ref.version ?? 'latest',
      `The registry collection ${formatRef({ ...ref, version: undefined })}`,
    );
    const [member] = await executor.query<{
      artifact_version_id: string;
      linked_at: string;
      linked_by: string | null;
      workflow_id: string | null;
    }>(
      'SELECT artifact_version_id, linked_at, linked_by, workflow_id FROM collection_members WHERE collection_id = ? AND version_index = ?',
      [collection.id, version],
    );
    return {
      ref: formatRef({ ...ref, version: `v${version}` }),
      org: ref.org,
      registry: ref.registry,
      collection: ref.collection,
      version,
      aliases: await aliasesOfVersion(executor, collection.id, version),
      linkedAt: member!.linked_at,
      linkedBy: member!.linked_by,
      workflowId: member!.workflow_id,
      artifact: await this.artifacts.getById(executor, member!.artifact_version_id),
    };
  }

  /**
   * Moves a collection alias (`production`, `staging`, …) by compare-and-set: `expected` must be where it points now
   * (null: unassigned), else AliasConflictError; moving it to where it already points is a no-op success.
   */
  async moveAlias(collectionRef: string, request: MoveAliasRequest): Promise<AliasMoveResult> {
    const ref = parseRefOfKind(collectionRef, 'registry');
    return this.context.database.transaction(async (transaction) => {
      const collection = await this.requireCollection(transaction, ref);
      return moveAlias(
        transaction,
        collection,
        request,
        `The registry collection ${formatRef({ ...ref, version: undefined })}`,
      );
    });
  }

  /**
   * Points an alias of a registry collection at a version in one transaction: the check of `expected` and the move
   * happen under the alias lock, so no other writer moves it in between. A retried promotion that finds the alias
   * already at `version` is a no-op success (`moved: false`).
   */
  async promote(request: PromoteRequest): Promise<AliasMoveResult> {
    const ref = parseRefOfKind(request.collection, 'registry');
    if (ref.version !== undefined) {
      throw new InvalidRefError(
        `The collection to promote in, ${request.collection}, names a version; pass the collection itself (drop ":${ref.version}").`,
      );
    }
    return this.moveAlias(request.collection, {
      alias: request.alias,
      to: request.version,
      expected: request.expected,
      actor: request.actor,
      workflowId: request.workflowId,
    });
  }

  /** Every move of the collection's aliases (or one alias): who, which workflow, when, from → to. */
  async aliasHistory(collectionRef: string, alias?: string): Promise<AliasMove[]> {
    const ref = parseRefOfKind(collectionRef, 'registry');
    const collection = await this.requireCollection(this.context.database, ref);
    return aliasHistory(this.context.database, collection.id, alias);
  }

  /** Every linked version of a collection, oldest first. */
  async versions(collectionRef: string): Promise<LinkedVersion[]> {
    const ref = parseRefOfKind(collectionRef, 'registry');
    const collection = await this.requireCollection(this.context.database, ref);
    const rows = await this.context.database.query<{ version_index: number }>(
      'SELECT version_index FROM collection_members WHERE collection_id = ? ORDER BY version_index',
      [collection.id],
    );
    const result: LinkedVersion[] = [];
    for (const row of rows) result.push(await this.resolve(formatRef({ ...ref, version: `v${row.version_index}` })));
    return result;
  }
}
