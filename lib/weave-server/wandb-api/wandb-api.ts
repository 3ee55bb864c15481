import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type GraphQLError, graphql, parse, validate, type DocumentNode, type GraphQLSchema } from 'graphql';
import {
  canonicalJson,
  formatRef,
  InvalidValueError,
  LineageError,
  NotFoundError,
  REGISTRY_PROJECT_PREFIX,
  validateName,
  type ArtifactVersion,
  type LineageStore,
  type ManifestEntry,
} from '../../lineage';
import { buildWandbSchema } from './schema';

/** What one GraphQL request needs besides its document: where weft is reachable from the client (for file URLs). */
export interface WandbRequestContext {
  baseUrl: string;
}

/** An error the client sees in W&B's shape (`{"errors": [{"message": …}]}`) with an HTTP status. */
export class WandbApiError extends Error {
  constructor(
    message: string,
    readonly status: number = 400,
  ) {
    super(message);
    this.name = 'WandbApiError';
  }
}

/** W&B manifest as the SDK writes it (`wandb_manifest.json`): entries by path, digests base64 MD5 for files. */
export interface WandbManifest {
  version: 1;
  storagePolicy: string;
  storagePolicyConfig: Record<string, unknown>;
  contents: Record<string, { digest: string; ref?: string; size?: number; birthArtifactID?: string; extra?: unknown }>;
}

interface DraftRow {
  id: string;
  entity: string;
  project: string;
  name: string;
  artifact_type: string;
  description: string | null;
  metadata_json: string;
  aliases_json: string;
  run_id: string | null;
  digest: string;
  manifest_json: string | null;
  state: string;
  artifact_version_id: string | null;
  created_at: string;
}

/** An artifact as the GraphQL resolvers see it: a committed weft version, or a draft the SDK is still writing. */
interface ArtifactView {
  key: string;
  entity: string;
  project: string;
  name: string;
  type: string;
  description: string | null;
  metadata: Record<string, unknown>;
  state: 'PENDING' | 'COMMITTED';
  digest: string;
  createdAt: string;
  version?: ArtifactVersion;
}

/** Server features the client asks for; an empty list is "an older server", for which every flow has a fallback. */
const SERVER_FEATURES: string[] = [];

const encodeId = (kind: string, key: string): string => Buffer.from(`${kind}:${key}`).toString('base64');

function decodeId(id: string, kind: string): string {
  const text = Buffer.from(id, 'base64').toString('utf8');
  if (!text.startsWith(`${kind}:`)) {
    throw new WandbApiError(`"${id}" is not an ${kind} id this server handed out.`, 404);
  }
  return text.slice(kind.length + 1);
}

function requireString(input: Record<string, unknown>, field: string, operation: string): string {
  const value = input[field];
  if (typeof value !== 'string' || value.length === 0) {
    throw new WandbApiError(`${operation}: the input field "${field}" is required (a non-empty string).`);
  }
  return value;
}

function optionalString(input: Record<string, unknown>, field: string): string | undefined {
  const value = input[field];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function inputObject(value: unknown, operation: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WandbApiError(`${operation}: "input" must be an object.`);
  }
  return value as Record<string, unknown>;
}

function parseJsonString(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null || value === '') return {};
  try {
    const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw new WandbApiError(`${what} must be a JSON object (a JSONString such as "{\\"lr\\": 0.1}").`);
}

const base64ToHex = (digest: string): string => Buffer.from(digest, 'base64').toString('hex');

/**
 * W&B's GraphQL API and file URLs over weft's lineage store. Runs are weft runs (the W&B run id is the weft run id),
 * artifact sequences are weft artifact collections, registry portfolios (`<org>/wandb-registry-<R>/<C>`) are weft
 * registry collections, `useArtifact` is a lineage input edge and a committed `log_artifact` an output edge.
 */
export class WandbApi {
  private readonly schema: GraphQLSchema = buildWandbSchema();
  private readonly stagingRoot: string;

  constructor(
    private readonly store: LineageStore,
    private readonly options: {
      defaultEntity: string;
      /** The organisation every entity belongs to (registries live under it). */
      org: string;
      /** Signs file URLs so that uploads and downloads need no Authorization header (like a signed URL). */
      sign: (urlPath: string) => string;
    },
  ) {
    this.stagingRoot = path.join(path.dirname(store.blobDirectory), 'wandb-staging');
  }

  /** Parses, validates and executes one GraphQL request; malformed documents and unknown fields are 400s. */
  async execute(
    body: { query: string; variables?: Record<string, unknown> | null; operationName?: string | null },
    context: WandbRequestContext,
  ): Promise<{ status: number; body: unknown }> {
    let document: DocumentNode;
    try {
      document = parse(body.query);
    } catch (error) {
      return { status: 400, body: { errors: [{ message: `Malformed GraphQL: ${(error as Error).message}` }] } };
    }
    const problems = validate(this.schema, document);
    if (problems.length > 0) {
      return {
        status: 400,
        body: {
          errors: problems.map((problem) => ({
            message: `${problem.message} weft serves the part of W&B's API that the wandb and weave SDKs use (lib/weave-server/wandb-api).`,
            locations: problem.locations,
          })),
        },
      };
    }
    const result = await graphql({
      schema: this.schema,
      source: body.query,
      rootValue: this.root(context),
      variableValues: body.variables ?? undefined,
      // wandb-core sends operationName "" for unnamed documents: that means "the only operation", not one named "".
      operationName: body.operationName || undefined,
    });
    const errors = result.errors?.map((error: GraphQLError) => ({
      message: error.message,
      path: error.path,
      extensions: { code: codeOf(error.originalError) },
    }));
    return { status: 200, body: errors ? { data: result.data ?? null, errors } : { data: result.data } };
  }

  private url(context: WandbRequestContext, urlPath: string): string {
    return `${context.baseUrl}${urlPath}?sig=${this.options.sign(urlPath)}`;
  }

  // ---------------------------------------------------------------- identity

  private organization(): Record<string, unknown> {
    const org = this.options.org;
    return {
      id: encodeId('Organization', org),
      name: org,
      orgEntity: { id: encodeId('Entity', org), name: org },
      coreWeaveOrganizationId: null,
      featureFlags: [],
    };
  }

  private async knownOrgs(): Promise<Set<string>> {
    const rows = await this.store.database.query<{ org: string }>('SELECT DISTINCT org FROM registries');
    return new Set([this.options.org, ...rows.map((row) => row.org)]);
  }

  private user(): Record<string, unknown> {
    const entity = this.options.defaultEntity;
    return {
      id: encodeId('User', entity),
      name: entity,
      entity,
      username: entity,
      email: null,
      admin: false,
      flags: '{}',
      teams: { edges: [{ node: { id: encodeId('Entity', entity), name: entity } }] },
      defaultEntity: { id: encodeId('Entity', entity), name: entity },
      organizations: [this.organization()],
    };
  }

  private entity(name: string): Record<string, unknown> {
    return {
      id: encodeId('Entity', name),
      name,
      organization: () => this.organization(),
      user: () => this.user(),
      xxhashDigestsEnabled: false,
    };
  }

  // ---------------------------------------------------------------- the root

  private root(context: WandbRequestContext): Record<string, unknown> {
    return {
      viewer: () => this.user(),
      serverInfo: () => ({ features: SERVER_FEATURES.map((name) => ({ name, isEnabled: true })) }),
      project: (args: { name?: string | null; entityName?: string | null }) => this.project(args, context),
      model: (args: { name?: string | null; entityName?: string | null }) => this.project(args, context),
      entity: (args: { name: string }) => this.entity(args.name),
      organization: async (args: { name: string }) =>
        (await this.knownOrgs()).has(args.name) ? this.organization() : null,
      artifact: async (args: { id: string }) => this.artifactNode(await this.loadArtifact(args.id), context),
      upsertModel: (args: { input: unknown }) => {
        const input = inputObject(args.input, 'upsertModel');
        const name = validateName('project', requireString(input, 'name', 'upsertModel'));
        const entity = validateName('entity', optionalString(input, 'entityName') ?? this.options.defaultEntity);
        return {
          model: this.projectNode(entity, name, context, optionalString(input, 'description') ?? null),
          inserted: false,
        };
      },
      upsertBucket: (args: { input: unknown }) => this.upsertBucket(inputObject(args.input, 'upsertBucket'), context),
      createRunFiles: (args: { input: unknown }) =>
        this.createRunFiles(inputObject(args.input, 'createRunFiles'), context),
      createArtifact: (args: { input: unknown }) =>
        this.createArtifact(inputObject(args.input, 'createArtifact'), context),
      createArtifactManifest: (args: { input: unknown }) =>
        this.manifestUpload(
          requireString(inputObject(args.input, 'createArtifactManifest'), 'artifactID', 'createArtifactManifest'),
          context,
        ),
      updateArtifactManifest: (args: { input: unknown }) => {
        const input = inputObject(args.input, 'updateArtifactManifest');
        const key = decodeId(requireString(input, 'artifactManifestID', 'updateArtifactManifest'), 'ArtifactManifest');
        return this.manifestUpload(encodeId('Artifact', key), context);
      },
      createArtifactFiles: (args: { input: unknown }) =>
        this.createArtifactFiles(inputObject(args.input, 'createArtifactFiles'), context),
      commitArtifact: async (args: { input: unknown }) => {
        const id = requireString(inputObject(args.input, 'commitArtifact'), 'artifactID', 'commitArtifact');
        await this.commit(id);
        return { artifact: this.artifactNode(await this.loadArtifact(id), context) };
      },
      completeMultipartUploadArtifact: () => {
        throw new WandbApiError('weft hands out single-part upload URLs only; upload the file with one PUT.');
      },
      useArtifact: (args: { input: unknown }) => this.useArtifact(inputObject(args.input, 'useArtifact'), context),
      linkArtifact: (args: { input: unknown }) => this.linkArtifact(inputObject(args.input, 'linkArtifact'), context),
      addAliases: (args: { input: unknown }) => this.addAliases(inputObject(args.input, 'addAliases')),
      deleteAliases: () => {
        throw new WandbApiError(
          'weft moves aliases but does not delete them (their history is kept); point the alias at another version instead.',
        );
      },
      updateArtifact: (args: { input: unknown }) =>
        this.updateArtifact(inputObject(args.input, 'updateArtifact'), context),
    };
  }

  // ---------------------------------------------------------------- projects and collections

  private project(
    args: { name?: string | null; entityName?: string | null },
    context: WandbRequestContext,
  ): Record<string, unknown> {
    const entity = args.entityName || this.options.defaultEntity;
    const name = args.name || 'uncategorized';
    // weave.init asks for the project and creates it when missing; in weft every project exists once named.
    return this.projectNode(entity, name, context, null);
  }

  private projectNode(
    entity: string,
    name: string,
    context: WandbRequestContext,
    description: string | null,
  ): Record<string, unknown> {
    const isRegistry = name.startsWith(REGISTRY_PROJECT_PREFIX);
    return {
      id: encodeId('Project', `${entity}/${name}`),
      internalId: encodeId('Project', `${entity}/${name}`),
      name,
      description,
      readOnly: false,
      entity: () => this.entity(entity),
      artifact: async (args: { name: string }) => {
        try {
          return this.artifactNode(
            await this.viewOfVersion(await this.resolveMember(entity, name, args.name)),
            context,
          );
        } catch (error) {
          if (error instanceof NotFoundError) return null;
          throw error;
        }
      },
      artifactCollection: (args: { name: string }) =>
        this.collectionNode(entity, name, args.name, isRegistry ? 'portfolio' : 'sequence', context),
      artifactCollectionMembership: async (args: { name: string }) => {
        const [collection, alias] = splitVersionName(args.name);
        return this.membership(entity, name, collection, alias, context);
      },
      run: async (args: { name: string }) => this.runNode(args.name, context),
      bucket: async (args: { name: string }) => this.runNode(args.name, context),
    };
  }

  private collectionNode(
    entity: string,
    project: string,
    name: string,
    kind: 'portfolio' | 'sequence',
    context: WandbRequestContext,
  ): Record<string, unknown> {
    return {
      __typename: kind === 'portfolio' ? 'ArtifactPortfolio' : 'ArtifactSequence',
      id: encodeId(kind === 'portfolio' ? 'ArtifactPortfolio' : 'ArtifactSequence', `${entity}/${project}/${name}`),
      name,
      description: null,
      project: () => this.projectNode(entity, project, context, null),
      artifactMembership: (args: { aliasName: string }) =>
        this.membership(entity, project, name, args.aliasName, context),
      latestArtifact: async () => {
        try {
          return this.artifactNode(
            await this.viewOfVersion(await this.resolveMember(entity, project, `${name}:latest`)),
            context,
          );
        } catch (error) {
          if (error instanceof NotFoundError) return null;
          throw error;
        }
      },
    };
  }

  /** The version behind `<collection>:<alias or vN>` in a project or a registry; NotFoundError when there is none. */
  private async resolveMember(entity: string, project: string, nameWithVersion: string): Promise<ArtifactVersion> {
    const [collection, alias] = splitVersionName(nameWithVersion);
    if (project.startsWith(REGISTRY_PROJECT_PREFIX)) {
      const linked = await this.store.registry.resolve(registryMemberRef(entity, project, collection, alias));
      return linked.artifact;
    }
    return this.store.artifacts.get(formatRef({ kind: 'artifact', entity, project, name: collection, version: alias }));
  }

  private async membership(
    entity: string,
    project: string,
    collection: string,
    alias: string,
    context: WandbRequestContext,
  ): Promise<Record<string, unknown> | null> {
    const isRegistry = project.startsWith(REGISTRY_PROJECT_PREFIX);
    if (isRegistry && !(await this.knownOrgs()).has(entity)) {
      throw new WandbApiError(
        `Unknown organization "${entity}": registries live under the org "${this.options.org}" (use ${this.options.org}/${project}/${collection}).`,
        404,
      );
    }
    let version: ArtifactVersion;
    let versionIndex: number;
    let aliases: string[];
    let createdAt: string;
    try {
      if (isRegistry) {
        const linked = await this.store.registry.resolve(registryMemberRef(entity, project, collection, alias));
        version = linked.artifact;
        versionIndex = linked.version;
        aliases = linked.aliases;
        createdAt = linked.linkedAt;
      } else {
        version = await this.store.artifacts.get(
          formatRef({ kind: 'artifact', entity, project, name: collection, version: alias }),
        );
        versionIndex = version.version;
        aliases = version.aliases;
        createdAt = version.createdAt;
      }
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
    const view = await this.viewOfVersion(version);
    const collectionNode = (): Record<string, unknown> =>
      this.collectionNode(entity, project, collection, isRegistry ? 'portfolio' : 'sequence', context);
    return {
      __typename: 'ArtifactCollectionMembership',
      id: encodeId('ArtifactCollectionMembership', `${entity}/${project}/${collection}:v${versionIndex}`),
      versionIndex,
      createdAt,
      aliases: aliases.map((name) => ({
        __typename: 'ArtifactAlias',
        id: encodeId('ArtifactAlias', `${entity}/${project}/${collection}:${name}`),
        alias: name,
        artifactCollection: collectionNode,
      })),
      artifactCollection: collectionNode,
      artifact: () => this.artifactNode(view, context),
      files: async (args: { after?: string | null; first?: number | null; names?: string[] | null }) =>
        this.fileConnection(view, context, args),
    };
  }

  // ---------------------------------------------------------------- artifacts

  private async draft(key: string): Promise<DraftRow | undefined> {
    const [row] = await this.store.database.query<DraftRow>('SELECT * FROM wandb_artifacts WHERE id = ?', [key]);
    return row;
  }

  /** An artifact by the id the client holds: a draft (maybe committed since) or a weft version's own id. */
  private async loadArtifact(id: string): Promise<ArtifactView> {
    const key = decodeId(id, 'Artifact');
    const draft = await this.draft(key);
    if (draft) {
      if (draft.artifact_version_id) {
        const version = await this.versionById(draft.artifact_version_id);
        return { ...(await this.viewOfVersion(version)), key, digest: draft.digest };
      }
      return {
        key,
        entity: draft.entity,
        project: draft.project,
        name: draft.name,
        type: draft.artifact_type,
        description: draft.description,
        metadata: JSON.parse(draft.metadata_json) as Record<string, unknown>,
        state: 'PENDING',
        digest: draft.digest,
        createdAt: draft.created_at,
      };
    }
    return this.viewOfVersion(await this.versionById(key));
  }

  private async versionById(versionId: string): Promise<ArtifactVersion> {
    const [row] = await this.store.database.query<{
      owner: string;
      project: string;
      name: string;
      version_index: number;
    }>(
      `SELECT c.owner, c.project, c.name, v.version_index FROM artifact_versions v JOIN collections c ON c.id = v.collection_id
       WHERE v.id = ?`,
      [versionId],
    );
    if (!row)
      throw new WandbApiError(`No artifact with id ${encodeId('Artifact', versionId)} exists on this server.`, 404);
    return this.store.artifacts.get(
      formatRef({
        kind: 'artifact',
        entity: row.owner,
        project: row.project,
        name: row.name,
        version: `v${Number(row.version_index)}`,
      }),
    );
  }

  private async viewOfVersion(version: ArtifactVersion): Promise<ArtifactView> {
    // The id the SDK got when it logged this version stays its id; other versions go by weft's own id.
    const [draft] = await this.store.database.query<{ id: string; digest: string }>(
      'SELECT id, digest FROM wandb_artifacts WHERE artifact_version_id = ? ORDER BY created_at LIMIT 1',
      [version.id],
    );
    return {
      key: draft?.id ?? version.id,
      entity: version.entity,
      project: version.project,
      name: version.name,
      type: version.type,
      description: version.description,
      metadata: version.metadata,
      state: 'COMMITTED',
      digest: draft?.digest ?? version.digest,
      createdAt: version.createdAt,
      version,
    };
  }

  private artifactNode(view: ArtifactView, context: WandbRequestContext): Record<string, unknown> {
    const id = encodeId('Artifact', view.key);
    const sequence = (): Record<string, unknown> =>
      this.collectionNode(view.entity, view.project, view.name, 'sequence', context);
    const version = view.version;
    return {
      __typename: 'Artifact',
      id,
      artifactSequence: sequence,
      versionIndex: version?.version ?? null,
      artifactType: { id: encodeId('ArtifactType', view.type), name: view.type },
      description: view.description,
      metadata: JSON.stringify(view.metadata),
      ttlDurationSeconds: -1,
      ttlIsInherited: true,
      tags: [],
      historyStep: null,
      state: view.state,
      size: version?.size ?? 0,
      digest: view.digest,
      digestAlgorithm: 'MANIFEST_MD5',
      commitHash: version ? view.digest.slice(0, 12) : null,
      fileCount: version?.manifest.length ?? 0,
      createdAt: view.createdAt,
      updatedAt: view.createdAt,
      aliases: () =>
        (version?.aliases ?? []).map((alias) => ({
          __typename: 'ArtifactAlias',
          id: encodeId('ArtifactAlias', `${view.entity}/${view.project}/${view.name}:${alias}`),
          alias,
          artifactCollection: sequence,
        })),
      currentManifest: () => ({
        id: encodeId('ArtifactManifest', view.key),
        file: {
          id: encodeId('File', `${view.key}/wandb_manifest.json`),
          name: 'wandb_manifest.json',
          directUrl: this.url(context, `/wandb-files/manifest/${encodeURIComponent(view.key)}`),
          url: this.url(context, `/wandb-files/manifest/${encodeURIComponent(view.key)}`),
        },
      }),
    };
  }

  private fileConnection(
    view: ArtifactView,
    context: WandbRequestContext,
    args: { after?: string | null; first?: number | null; names?: string[] | null },
  ): Record<string, unknown> {
    const files = (view.version?.manifest ?? []).filter(
      (entry) => entry.digest !== undefined && (!args.names || args.names.includes(entry.path)),
    );
    const start = args.after ? Number(Buffer.from(args.after, 'base64').toString('utf8')) + 1 : 0;
    const count = args.first ?? files.length;
    const page = files.slice(start, start + count);
    return {
      pageInfo: {
        __typename: 'PageInfo',
        startCursor: page.length > 0 ? Buffer.from(String(start)).toString('base64') : null,
        endCursor: page.length > 0 ? Buffer.from(String(start + page.length - 1)).toString('base64') : null,
        hasNextPage: start + page.length < files.length,
        hasPreviousPage: start > 0,
      },
      edges: page.map((entry, index) => {
        const urlPath = `/wandb-files/artifact/${encodeURIComponent(view.key)}/${encodeURIComponent(entry.path)}`;
        return {
          cursor: Buffer.from(String(start + index)).toString('base64'),
          node: {
            __typename: 'File',
            id: encodeId('File', `${view.key}/${entry.path}`),
            name: entry.path,
            sizeBytes: entry.size,
            directUrl: this.url(context, urlPath),
            url: this.url(context, urlPath),
          },
        };
      }),
    };
  }

  // ---------------------------------------------------------------- runs

  private async runNode(runId: string, context: WandbRequestContext): Promise<Record<string, unknown> | null> {
    let run;
    try {
      run = await this.store.runs.get(runId);
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
    return {
      id: encodeId('Run', run.id),
      name: run.id,
      displayName: run.name,
      description: null,
      notes: null,
      state: run.state,
      config: JSON.stringify(run.config),
      summaryMetrics: JSON.stringify(run.summary),
      sweepName: null,
      tags: [],
      project: () => this.projectNode(run.entity, run.project, context, null),
      historyLineCount: 0,
      logLineCount: 0,
      eventsLineCount: 0,
      historyTail: '[]',
      eventsTail: '[]',
      wandbConfig: () => '{}',
    };
  }

  private async upsertBucket(
    input: Record<string, unknown>,
    context: WandbRequestContext,
  ): Promise<Record<string, unknown>> {
    const runId = optionalString(input, 'name') ?? crypto.randomBytes(4).toString('hex');
    const entity = validateName('entity', optionalString(input, 'entityName') ?? this.options.defaultEntity);
    const project = validateName('project', optionalString(input, 'modelName') ?? 'uncategorized');
    let inserted = false;
    try {
      const existing = await this.store.runs.get(runId);
      if (existing.entity !== entity || existing.project !== project) {
        throw new WandbApiError(
          `The run id ${runId} belongs to ${existing.entity}/${existing.project}; run ids are unique on a weft server. Start the run with another id.`,
          409,
        );
      }
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      const config = parseJsonString(input.config, 'The run config');
      await this.store.runs.create({
        id: runId,
        entity,
        project,
        jobType: validateName('job type', optionalString(input, 'jobType') ?? 'wandb-run'),
        name: optionalString(input, 'displayName'),
        config,
      });
      inserted = true;
    }
    return { bucket: await this.runNode(runId, context), inserted };
  }

  private createRunFiles(input: Record<string, unknown>, context: WandbRequestContext): Record<string, unknown> {
    const entity = validateName('entity', requireString(input, 'entityName', 'createRunFiles'));
    const project = validateName('project', requireString(input, 'projectName', 'createRunFiles'));
    const run = requireString(input, 'runName', 'createRunFiles');
    const files = Array.isArray(input.files)
      ? input.files.filter((file): file is string => typeof file === 'string')
      : [];
    return {
      runID: encodeId('Run', run),
      uploadHeaders: [],
      files: files.map((name) => ({
        id: encodeId('File', `${run}/${name}`),
        name,
        uploadUrl: this.url(
          context,
          `/wandb-files/run/${encodeURIComponent(entity)}/${encodeURIComponent(project)}/${encodeURIComponent(run)}/${encodeURIComponent(name)}`,
        ),
      })),
    };
  }

  /** A run file PUT by the SDK at finish (config.yaml, output.log, …): kept as a Weave file of the run's project. */
  async storeRunFile(entity: string, project: string, bytes: Uint8Array): Promise<void> {
    await this.store.files.put(bytes, {
      entity: validateName('entity', entity),
      project: validateName('project', project),
    });
  }

  /** The SDK's file_stream: at `complete` the run finishes (exit code 0: finished, else failed) with its summary. */
  async fileStream(runId: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (body.complete === true) {
      const files = (body.files ?? {}) as Record<string, { content?: unknown }>;
      const summaryLines = files['wandb-summary.json']?.content;
      let summary: Record<string, unknown> = {};
      if (Array.isArray(summaryLines) && typeof summaryLines.at(-1) === 'string') {
        summary = parseJsonString(summaryLines.at(-1), 'wandb-summary.json');
      }
      await this.store.runs.finish(runId, { summary, state: body.exitcode === 0 ? 'finished' : 'failed' });
    }
    return { exitcode: null, limits: {} };
  }

  // ---------------------------------------------------------------- artifact writes

  private async createArtifact(
    input: Record<string, unknown>,
    context: WandbRequestContext,
  ): Promise<Record<string, unknown>> {
    const operation = 'createArtifact';
    const entity = validateName('entity', optionalString(input, 'entityName') ?? this.options.defaultEntity);
    const project = validateName('project', requireString(input, 'projectName', operation));
    const name = validateName('artifact name', requireString(input, 'artifactCollectionName', operation));
    const type = validateName('artifact type', requireString(input, 'artifactTypeName', operation));
    const metadata = parseJsonString(input.metadata, 'The artifact metadata');
    const aliases = Array.isArray(input.aliases)
      ? input.aliases
          .map((alias) => (alias as { alias?: unknown }).alias)
          .filter((alias): alias is string => typeof alias === 'string' && alias !== 'latest')
      : [];
    for (const alias of aliases) validateName('alias', alias);
    const key = crypto.randomUUID();
    const now = new Date().toISOString();
    await this.store.database.execute(
      `INSERT INTO wandb_artifacts (id, entity, project, name, artifact_type, description, metadata_json, aliases_json, run_id,
        digest, manifest_json, state, artifact_version_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'PENDING', NULL, ?)`,
      [
        key,
        entity,
        project,
        name,
        type,
        optionalString(input, 'description') ?? null,
        canonicalJson(metadata),
        JSON.stringify(aliases),
        optionalString(input, 'runName') ?? null,
        optionalString(input, 'digest') ?? '',
        now,
      ],
    );
    let latest: Record<string, unknown> | null = null;
    try {
      latest = {
        id: encodeId(
          'Artifact',
          (await this.viewOfVersion(await this.resolveMember(entity, project, `${name}:latest`))).key,
        ),
      };
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    return {
      artifact: {
        ...this.artifactNode(
          {
            key,
            entity,
            project,
            name,
            type,
            description: optionalString(input, 'description') ?? null,
            metadata,
            state: 'PENDING',
            digest: optionalString(input, 'digest') ?? '',
            createdAt: now,
          },
          context,
        ),
        artifactSequence: {
          ...this.collectionNode(entity, project, name, 'sequence', context),
          latestArtifact: latest,
        },
      },
    };
  }

  private async pendingDraft(artifactId: string, operation: string): Promise<DraftRow> {
    const key = decodeId(artifactId, 'Artifact');
    const draft = await this.draft(key);
    if (!draft)
      throw new WandbApiError(`${operation}: the artifact ${artifactId} was not created with createArtifact.`, 404);
    if (draft.state !== 'PENDING')
      throw new WandbApiError(`${operation}: the artifact ${artifactId} is already committed.`, 409);
    return draft;
  }

  private async manifestUpload(artifactId: string, context: WandbRequestContext): Promise<Record<string, unknown>> {
    const draft = await this.pendingDraft(artifactId, 'createArtifactManifest');
    const urlPath = `/wandb-files/manifest/${encodeURIComponent(draft.id)}`;
    return {
      artifactManifest: {
        id: encodeId('ArtifactManifest', draft.id),
        file: {
          id: encodeId('File', `${draft.id}/wandb_manifest.json`),
          name: 'wandb_manifest.json',
          uploadUrl: this.url(context, urlPath),
          uploadHeaders: [],
        },
      },
    };
  }

  private async createArtifactFiles(
    input: Record<string, unknown>,
    context: WandbRequestContext,
  ): Promise<Record<string, unknown>> {
    const files = Array.isArray(input.artifactFiles) ? (input.artifactFiles as Record<string, unknown>[]) : [];
    const edges = [];
    for (const file of files) {
      const artifactId = requireString(file, 'artifactID', 'createArtifactFiles');
      const draft = await this.pendingDraft(artifactId, 'createArtifactFiles');
      const name = requireString(file, 'name', 'createArtifactFiles');
      const md5 = requireString(file, 'md5', 'createArtifactFiles');
      const hex = base64ToHex(md5);
      if (hex.length !== 32)
        throw new WandbApiError(`createArtifactFiles: "${md5}" is not a base64 MD5 digest (file ${name}).`);
      const urlPath = `/wandb-files/upload/${encodeURIComponent(draft.id)}/${hex}`;
      edges.push({
        node: {
          id: encodeId('File', `${draft.id}/${name}`),
          name,
          storagePath: `${draft.id}/${hex}`,
          uploadUrl: this.url(context, urlPath),
          uploadHeaders: [],
          uploadMultipartUrls: null,
          artifact: { id: artifactId },
        },
      });
    }
    return { files: { pageInfo: { hasNextPage: false, hasPreviousPage: false }, edges } };
  }

  private stagingDirectory(key: string): string {
    if (!/^[0-9a-f-]{36}$/.test(key)) throw new WandbApiError(`"${key}" is not an artifact upload id.`, 404);
    return path.join(this.stagingRoot, key);
  }

  /**
   * Stores an uploaded file of a draft artifact after checking its bytes against the MD5 the client declared.
   * A mismatch keeps nothing and says so; the staged file becomes part of the artifact only at commit.
   */
  async stageUpload(key: string, hexMd5: string, source: NodeJS.ReadableStream): Promise<void> {
    const draft = await this.draft(key);
    if (!draft || draft.state !== 'PENDING') {
      throw new WandbApiError(
        `No artifact upload ${key} is open (create the artifact first, and upload before committing).`,
        404,
      );
    }
    if (!/^[0-9a-f]{32}$/.test(hexMd5)) throw new WandbApiError(`"${hexMd5}" is not a hex MD5 digest.`, 400);
    const directory = this.stagingDirectory(key);
    await fs.promises.mkdir(directory, { recursive: true });
    const temporary = path.join(directory, `.${hexMd5}.${crypto.randomUUID()}.part`);
    const hash = crypto.createHash('md5');
    // SHA-256 too, so the commit can move the file into the blob store instead of reading it again.
    const sha256 = crypto.createHash('sha256');
    const out = fs.createWriteStream(temporary);
    try {
      await new Promise<void>((resolve, reject) => {
        source.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          sha256.update(chunk);
          if (!out.write(chunk)) {
            source.pause();
            out.once('drain', () => source.resume());
          }
        });
        source.on('end', () => out.end(resolve));
        source.on('error', reject);
        out.on('error', reject);
      });
      const actual = hash.digest('hex');
      if (actual !== hexMd5) {
        throw new WandbApiError(
          `The uploaded bytes have MD5 ${Buffer.from(actual, 'hex').toString('base64')}, but the upload URL was issued for ${Buffer.from(hexMd5, 'hex').toString('base64')}; nothing was stored. Upload the file again unchanged.`,
          400,
        );
      }
      await fs.promises.writeFile(path.join(directory, `${hexMd5}.sha256`), sha256.digest('hex'));
      await fs.promises.rename(temporary, path.join(directory, hexMd5));
    } catch (error) {
      out.destroy();
      await fs.promises.rm(temporary, { force: true });
      throw error;
    }
  }

  /** The manifest the SDK PUTs: parsed and checked now, kept with the draft until commit. */
  async stageManifest(key: string, bytes: Buffer): Promise<void> {
    const draft = await this.draft(key);
    if (!draft || draft.state !== 'PENDING') throw new WandbApiError(`No artifact upload ${key} is open.`, 404);
    const manifest = parseManifest(bytes.toString('utf8'));
    await this.store.database.execute('UPDATE wandb_artifacts SET manifest_json = ? WHERE id = ?', [
      JSON.stringify(manifest),
      key,
    ]);
  }

  /** Commits a draft: every file of its manifest must have been uploaded; then it is one weft artifact version. */
  private async commit(artifactId: string): Promise<void> {
    const key = decodeId(artifactId, 'Artifact');
    const draft = await this.draft(key);
    if (!draft)
      throw new WandbApiError(`commitArtifact: the artifact ${artifactId} was not created with createArtifact.`, 404);
    if (draft.state === 'COMMITTED') return;
    if (!draft.manifest_json) {
      throw new WandbApiError(
        `commitArtifact: the manifest of ${artifactId} was never uploaded; nothing was committed.`,
      );
    }
    const manifest = JSON.parse(draft.manifest_json) as WandbManifest;
    const directory = this.stagingDirectory(key);
    const [existing] = await this.store.database.query<{ artifact_type: string }>(
      "SELECT artifact_type FROM collections WHERE owner = ? AND project = ? AND name = ? AND kind = 'sequence'",
      [draft.entity, draft.project, draft.name],
    );
    if (existing && existing.artifact_type !== draft.artifact_type) {
      throw new WandbApiError(
        `commitArtifact: ${draft.entity}/${draft.project}/${draft.name} holds type "${existing.artifact_type}", not "${draft.artifact_type}"; log it with that type or another name. Nothing was committed.`,
      );
    }
    const files = [];
    const references = [];
    for (const [entryPath, entry] of Object.entries(manifest.contents)) {
      if (entry.ref !== undefined) {
        references.push({ path: entryPath, uri: entry.ref, checksum: entry.digest, size: entry.size ?? 0 });
        continue;
      }
      const staged = path.join(directory, base64ToHex(entry.digest));
      if (!fs.existsSync(staged)) {
        throw new WandbApiError(
          `commitArtifact: the file "${entryPath}" (MD5 ${entry.digest}) was never uploaded; nothing was committed.`,
        );
      }
      files.push({ path: entryPath, staged });
    }
    // Every file is there: now (and only now) they go into the blob store.
    const stored = [];
    for (const file of files) stored.push({ path: file.path, blobDigest: await this.linkIntoBlobs(file.staged) });
    let runId: string | undefined;
    if (draft.run_id) {
      try {
        runId = (await this.store.runs.get(draft.run_id)).id;
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
    const logged = await this.store.artifacts.log({
      entity: draft.entity,
      project: draft.project,
      name: draft.name,
      type: draft.artifact_type,
      description: draft.description ?? undefined,
      metadata: JSON.parse(draft.metadata_json) as Record<string, unknown>,
      files: stored,
      references,
      runId,
      idempotencyKey: `wandb-commit:${key}`,
    });
    const version = await this.store.artifacts.get(logged.ref);
    await this.store.database.transaction(async (transaction) => {
      await transaction.execute(
        'INSERT INTO wandb_manifests (artifact_version_id, manifest_json) VALUES (?, ?) ON CONFLICT DO NOTHING',
        [version.id, draft.manifest_json],
      );
      await transaction.execute(
        "UPDATE wandb_artifacts SET state = 'COMMITTED', artifact_version_id = ? WHERE id = ?",
        [version.id, key],
      );
    });
    const collectionRef = formatRef({
      kind: 'artifact',
      entity: draft.entity,
      project: draft.project,
      name: draft.name,
    });
    for (const alias of JSON.parse(draft.aliases_json) as string[]) {
      await this.pointAlias(collectionRef, alias, version.version, false);
    }
    await fs.promises.rm(directory, { recursive: true, force: true });
  }

  /** Links a staged upload into the content-addressed blob folder (no copy: the upload already hashed it). */
  private async linkIntoBlobs(staged: string): Promise<string> {
    const digest = (await fs.promises.readFile(`${staged}.sha256`, 'utf8')).trim();
    const target = this.store.blobPathOf(digest);
    if (!fs.existsSync(target)) {
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      const temporary = `${target}.${crypto.randomUUID()}.tmp`;
      try {
        await fs.promises.link(staged, temporary);
      } catch {
        // Another file system: a copy instead of a link.
        await fs.promises.copyFile(staged, temporary);
      }
      await fs.promises.rename(temporary, target);
    }
    return digest;
  }

  /** Points an alias of a collection (an artifact sequence or a registry collection) at a version, wherever it was. */
  private async pointAlias(collectionRef: string, alias: string, to: number, registry: boolean): Promise<void> {
    if (alias === 'latest') return;
    const history = registry
      ? await this.store.registry.aliasHistory(collectionRef, alias).catch(() => [])
      : await this.store.artifacts.aliasHistory(collectionRef, alias).catch(() => []);
    const expected = history.length > 0 ? (history.at(-1)!.toVersion ?? null) : null;
    const request = { alias, to, expected, actor: 'wandb-sdk' };
    if (registry) await this.store.registry.moveAlias(collectionRef, request);
    else await this.store.artifacts.moveAlias(collectionRef, request);
  }

  // ---------------------------------------------------------------- lineage, registry, aliases

  private async useArtifact(
    input: Record<string, unknown>,
    context: WandbRequestContext,
  ): Promise<Record<string, unknown>> {
    const artifactId = requireString(input, 'artifactID', 'useArtifact');
    const runId = requireString(input, 'runName', 'useArtifact');
    const view = await this.loadArtifact(artifactId);
    if (!view.version) throw new WandbApiError(`useArtifact: the artifact ${artifactId} is not committed yet.`, 409);
    await this.store.artifacts.use(view.version.ref, { runId });
    return { artifact: this.artifactNode(view, context) };
  }

  private async linkArtifact(
    input: Record<string, unknown>,
    context: WandbRequestContext,
  ): Promise<Record<string, unknown>> {
    const operation = 'linkArtifact';
    const artifactId = requireString(input, 'artifactID', operation);
    const org = requireString(input, 'entityName', operation);
    const project = requireString(input, 'projectName', operation);
    const collection = requireString(input, 'artifactPortfolioName', operation);
    if (!project.startsWith(REGISTRY_PROJECT_PREFIX)) {
      throw new WandbApiError(
        `${operation}: weft links into registries only; the target project must be "${REGISTRY_PROJECT_PREFIX}<Registry>", not "${project}".`,
      );
    }
    if (!(await this.knownOrgs()).has(org)) {
      throw new WandbApiError(
        `${operation}: unknown organization "${org}"; this server's organization is "${this.options.org}".`,
        404,
      );
    }
    const view = await this.loadArtifact(artifactId);
    if (!view.version) throw new WandbApiError(`${operation}: the artifact ${artifactId} is not committed yet.`, 409);
    const target = formatRef({
      kind: 'registry',
      org,
      registry: project.slice(REGISTRY_PROJECT_PREFIX.length),
      collection,
    });
    const linked = await this.store.registry.link({ artifact: view.version.ref, target, actor: 'wandb-sdk' });
    const aliases = Array.isArray(input.aliases) ? (input.aliases as { alias?: unknown }[]) : [];
    for (const alias of aliases) {
      if (typeof alias.alias === 'string') await this.pointAlias(target, alias.alias, linked.version, true);
    }
    return {
      versionIndex: linked.version,
      artifactMembership: () => this.membership(org, project, collection, `v${linked.version}`, context),
    };
  }

  private async addAliases(input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const view = await this.loadArtifact(requireString(input, 'artifactID', 'addAliases'));
    if (!view.version) throw new WandbApiError('addAliases: the artifact is not committed yet.', 409);
    const aliases = Array.isArray(input.aliases) ? (input.aliases as Record<string, unknown>[]) : [];
    for (const item of aliases) {
      const alias = requireString(item, 'alias', 'addAliases');
      const collection = requireString(item, 'artifactCollectionName', 'addAliases');
      const entity = optionalString(item, 'entityName') ?? view.entity;
      const project = optionalString(item, 'projectName') ?? view.project;
      const registry = project.startsWith(REGISTRY_PROJECT_PREFIX);
      const collectionRef = registry
        ? formatRef({
            kind: 'registry',
            org: entity,
            registry: project.slice(REGISTRY_PROJECT_PREFIX.length),
            collection,
          })
        : formatRef({ kind: 'artifact', entity, project, name: collection });
      const [member] = await this.store.database.query<{ version_index: number }>(
        `SELECT m.version_index FROM collection_members m JOIN collections c ON c.id = m.collection_id
         WHERE c.owner = ? AND c.project = ? AND c.name = ? AND m.artifact_version_id = ?`,
        [entity, project, collection, view.version.id],
      );
      if (!member) {
        throw new WandbApiError(`addAliases: the artifact is not a member of ${entity}/${project}/${collection}.`, 404);
      }
      await this.pointAlias(collectionRef, alias, Number(member.version_index), registry);
    }
    return { success: true };
  }

  private async updateArtifact(
    input: Record<string, unknown>,
    context: WandbRequestContext,
  ): Promise<Record<string, unknown>> {
    const view = await this.loadArtifact(requireString(input, 'artifactID', 'updateArtifact'));
    const description = input.description;
    if (typeof description === 'string' && description !== (view.description ?? '')) {
      throw new WandbApiError(
        'updateArtifact: weft keeps an artifact version immutable; log a new version to change its description.',
      );
    }
    if (
      typeof input.metadata === 'string' &&
      canonicalJson(parseJsonString(input.metadata, 'metadata')) !== canonicalJson(view.metadata)
    ) {
      throw new WandbApiError(
        'updateArtifact: weft keeps an artifact version immutable; log a new version to change its metadata.',
      );
    }
    return { artifact: this.artifactNode(view, context) };
  }

  // ---------------------------------------------------------------- downloads

  /** W&B's manifest of a committed version: the SDK's own, or computed (base64 MD5 per file) for one weft logged. */
  async manifestOf(key: string): Promise<WandbManifest> {
    const draft = await this.draft(key);
    const versionId = draft ? draft.artifact_version_id : key;
    if (!versionId) throw new WandbApiError('The artifact is not committed yet; its manifest is not readable.', 404);
    const [stored] = await this.store.database.query<{ manifest_json: string }>(
      'SELECT manifest_json FROM wandb_manifests WHERE artifact_version_id = ?',
      [versionId],
    );
    if (stored) return JSON.parse(stored.manifest_json) as WandbManifest;
    const version = await this.versionById(versionId);
    const contents: WandbManifest['contents'] = {};
    for (const entry of version.manifest) {
      contents[entry.path] =
        entry.ref !== undefined
          ? { digest: entry.checksum ?? entry.ref, ref: entry.ref, size: entry.size }
          : { digest: await this.md5Base64(entry), size: entry.size };
    }
    const manifest: WandbManifest = {
      version: 1,
      storagePolicy: 'wandb-storage-policy-v1',
      storagePolicyConfig: { storageLayout: 'V2' },
      contents,
    };
    await this.store.database.execute(
      'INSERT INTO wandb_manifests (artifact_version_id, manifest_json) VALUES (?, ?) ON CONFLICT DO NOTHING',
      [versionId, JSON.stringify(manifest)],
    );
    return manifest;
  }

  private async md5Base64(entry: ManifestEntry): Promise<string> {
    const hash = crypto.createHash('md5');
    for await (const chunk of fs.createReadStream(this.blobPath(entry))) hash.update(chunk as Buffer);
    return hash.digest('base64');
  }

  private blobPath(entry: ManifestEntry): string {
    return this.store.blobPathOf(entry.digest!);
  }

  /** The stored blob of one file of a committed version, for streaming to the SDK. */
  async fileOf(key: string, entryPath: string): Promise<{ path: string; size: number }> {
    const view = await this.loadArtifact(encodeId('Artifact', key));
    const entry = view.version?.manifest.find((item) => item.path === entryPath && item.digest !== undefined);
    if (!entry) throw new WandbApiError(`The artifact has no file "${entryPath}".`, 404);
    return { path: await this.resolveBlobPath(entry), size: entry.size };
  }

  private async resolveBlobPath(entry: ManifestEntry): Promise<string> {
    const candidate = this.blobPath(entry);
    if (fs.existsSync(candidate)) return candidate;
    // A store inconsistency (a blob deleted by hand): a 500 that says which file.
    throw new WandbApiError(
      `The blob of "${entry.path}" is missing from the store; the artifact cannot be downloaded.`,
      500,
    );
  }
}

function codeOf(error: unknown): string {
  if (error instanceof WandbApiError) return error.status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST';
  if (error instanceof NotFoundError) return 'NOT_FOUND';
  if (error instanceof LineageError) return error.retryable ? 'UNAVAILABLE' : 'BAD_REQUEST';
  return 'INTERNAL';
}

/** The weft ref of `<collection>:<alias or vN>` in the W&B registry project `wandb-registry-<Registry>` of an org. */
function registryMemberRef(org: string, project: string, collection: string, version: string): string {
  return formatRef({
    kind: 'registry',
    org,
    registry: project.slice(REGISTRY_PROJECT_PREFIX.length),
    collection,
    version,
  });
}

/** `name:alias` → [name, alias]; a name without a version means `latest`. */
function splitVersionName(value: string): [string, string] {
  const colon = value.lastIndexOf(':');
  if (colon <= 0) return [value, 'latest'];
  return [value.slice(0, colon), value.slice(colon + 1)];
}

function parseManifest(text: string): WandbManifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new WandbApiError(`The artifact manifest is not JSON: ${(error as Error).message}.`);
  }
  const manifest = parsed as Partial<WandbManifest>;
  if (manifest.version !== 1 || manifest.contents === null || typeof manifest.contents !== 'object') {
    throw new InvalidValueError('The artifact manifest must be W&B manifest version 1 with a "contents" object.');
  }
  for (const [entryPath, entry] of Object.entries(manifest.contents)) {
    if (typeof entry?.digest !== 'string') {
      throw new InvalidValueError(`The manifest entry "${entryPath}" has no digest.`);
    }
  }
  return manifest as WandbManifest;
}
