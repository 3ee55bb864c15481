import crypto from 'node:crypto';
import {
  formatRef,
  NotFoundError,
  parseRef,
  REGISTRY_PROJECT_PREFIX,
  type ArtifactVersion,
  type CallInput,
  type CallRecord,
  type LineageStore,
} from '../lineage';
import { ragModelRefOfArtifact, registryAliases, registryNames } from '../rag/registries';
import { callUpsertItems } from '../weave-server/trace-forwarder';
import { WandbClient, type WandbClientOptions } from './client';
import type { WandbRemoteConfig } from './config';
import {
  addAliasesMutation,
  artifactByIdQuery,
  artifactByNameQuery,
  collectionAliasQuery,
  commitArtifactMutation,
  createArtifactFilesMutation,
  createArtifactManifestMutation,
  createArtifactMutation,
  linkArtifactMutation,
  upsertRunMutation,
  viewerQuery,
  type RemoteArtifact,
} from './documents';
import { WandbAliasConflictError, WandbRequestError } from './errors';
import { PublicationJournal, type Publication } from './journal';
import { artifactDigest, md5OfBytes, md5OfFile, type WandbManifestFile } from './manifest';

/**
 * Where a retried activity finds what an earlier attempt already created remotely (the activity's heartbeat
 * details): remote artifact ids by local artifact ref, so a retry resumes that draft instead of starting another.
 */
export interface PublishCheckpoint {
  artifactIds: Record<string, string>;
  sentCallBatches?: Record<string, number>;
}

export interface PublishProgress {
  checkpoint: PublishCheckpoint;
  /** Called after every remote write with the checkpoint so far (the activity heartbeats it). */
  onProgress(checkpoint: PublishCheckpoint): void;
}

/** No activity around it (`weft sync`): nothing to heartbeat. */
export const untracked = (): PublishProgress => ({ checkpoint: { artifactIds: {} }, onProgress: () => undefined });

/** What one publication step wrote: remote refs by what they are, for `weft status` and the activity's result. */
export type RemoteRefs = Record<string, string>;

const CALL_BATCH = 200;

/**
 * What a local artifact ref inside a value becomes: `publish` publishes the artifact (an object that names its model
 * must resolve remotely); `known` maps it only when it is published already (a run's config just mentions it).
 */
type ArtifactRefMode = 'publish' | 'known';
const REMOTE_RUN_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Publishes what the pipeline recorded in the local store into a W&B server through W&B's own protocols, the
 * writes the wandb and weave SDKs make for the seed's steps: runs (`upsertBucket`, file_stream completion),
 * artifacts (`createArtifact`, `createArtifactFiles` + uploads, `createArtifactManifest` + upload,
 * `commitArtifact`), registry links (`linkArtifact`), aliases (`addAliases`), Weave objects, tables, files and
 * calls (`obj/create`, `table/create`, `file/create`, `call/upsert_batch`).
 *
 * Every write is idempotent: a run is upserted by its id, an artifact is looked up by its content digest (and by
 * the id a previous attempt recorded) before it is created, a link of the same version returns the same member,
 * objects and tables are content-addressed, calls are upserted by id. The journal (local store) records each
 * published item, so later attempts and `weft sync` skip it.
 */
export class WandbPublisher {
  readonly client: WandbClient;
  readonly journal: PublicationJournal;
  private readonly objectCache = new Map<string, string>();

  constructor(
    private readonly store: LineageStore,
    readonly config: WandbRemoteConfig,
    clientOptions: WandbClientOptions = {},
  ) {
    this.client = new WandbClient(config, clientOptions);
    this.journal = new PublicationJournal(store, config);
  }

  private get projectId(): string {
    return `${this.config.entity}/${this.config.project}`;
  }

  /** Checks the key against the server (a worker calls this at start): 401 is thrown, unreachable too (caller decides). */
  async checkAccess(): Promise<string> {
    const data = await this.client.graphql<{ viewer: { entity: string } | null }>(
      'read the API key’s user (viewer)',
      viewerQuery,
      {},
    );
    if (!data.viewer) {
      throw new WandbRequestError(
        `W&B at ${this.config.baseUrl} knows no user for WANDB_API_KEY; set it to a key of that server.`,
      );
    }
    return data.viewer.entity;
  }

  // ---------------------------------------------------------------- runs

  /** The remote run of a local run (same id): created with its config, finished with its summary when it finished. */
  async publishRun(
    localRunId: string,
    options: { workflowId?: string | null; displayName?: string; summary?: Record<string, unknown> },
  ): Promise<string> {
    const item = `run:${localRunId}`;
    const done = await this.journal.get(item);
    if (done?.remoteRef) return done.remoteRef;
    const run = await this.store.runs.get(localRunId);
    if (!REMOTE_RUN_ID.test(run.id)) throw new WandbRequestError(`The run id ${run.id} is not a valid W&B run id.`);
    const config = Object.fromEntries(
      Object.entries(await this.remoteValue(run.config, 'known')).map(([key, value]) => [key, { desc: null, value }]),
    );
    await this.upsertRun(run.id, run.jobType, options.displayName ?? run.name ?? `${run.jobType} ${run.id}`, config);
    if (run.state !== 'running') {
      await this.finishRun(run.id, run.state === 'finished' ? 0 : 1, options.summary ?? run.summary);
    }
    const remoteRef = `${this.projectId}/runs/${run.id}`;
    if (run.state !== 'running') {
      await this.journal.record({
        item,
        kind: 'run',
        workflowId: options.workflowId ?? run.workflowId,
        localRef: `run:${run.id}`,
        remoteRef,
        remoteId: run.id,
        state: 'published',
        detail: run.jobType,
      });
    }
    return remoteRef;
  }

  private async upsertRun(
    runId: string,
    jobType: string,
    displayName: string,
    config: Record<string, unknown>,
  ): Promise<void> {
    await this.client.graphql('create the run ' + runId, upsertRunMutation, {
      input: {
        name: runId,
        entityName: this.config.entity,
        modelName: this.config.project,
        jobType,
        displayName,
        config: JSON.stringify(config),
      },
    });
  }

  private async finishRun(runId: string, exitCode: number, summary: Record<string, unknown>): Promise<void> {
    const { entity, project } = this.config;
    await this.client.postJson(
      `finish the run ${runId}`,
      `${this.config.baseUrl}/files/${encodeURIComponent(entity)}/${encodeURIComponent(project)}/${encodeURIComponent(runId)}/file_stream`,
      {
        complete: true,
        exitcode: exitCode,
        files: {
          'wandb-summary.json': { offset: 0, content: [JSON.stringify(await this.remoteValue(summary, 'known'))] },
        },
      },
    );
  }

  // ---------------------------------------------------------------- artifacts

  /**
   * The remote version of a local artifact version: found by the id a previous attempt recorded, by its alias, or by
   * its content digest; else created, its files uploaded, its manifest uploaded and committed.
   */
  async publishArtifact(
    localRef: string,
    progress: PublishProgress,
    options: {
      runId?: string;
      aliases?: string[];
      workflowId?: string | null;
      /** Added to the remote metadata as they are (not mapped to remote refs). */
      extraMetadata?: Record<string, unknown>;
    } = {},
  ): Promise<{ remoteRef: string; id: string; versionIndex: number }> {
    const version = await this.store.artifacts.get(localRef);
    const item = `artifact:${version.ref}`;
    const done = await this.journal.get(item);
    if (done?.remoteRef && done.remoteId) {
      return { remoteRef: done.remoteRef, id: done.remoteId, versionIndex: versionOf(done.remoteRef) };
    }
    const { manifest, uploads } = await this.remoteManifest(version);
    const digest = artifactDigest(manifest);
    const what = `log the artifact ${version.name} (${localRef})`;
    let remote = await this.findArtifact(
      version,
      digest,
      progress.checkpoint.artifactIds[version.ref],
      options.aliases,
    );
    if (!remote) {
      const created = await this.client.graphql<{ createArtifact: { artifact: RemoteArtifact } }>(
        what,
        createArtifactMutation,
        {
          input: {
            entityName: this.config.entity,
            projectName: this.config.project,
            runName: options.runId,
            artifactTypeName: version.type,
            artifactCollectionName: version.name,
            digest,
            digestAlgorithm: 'MANIFEST_MD5',
            description: version.description,
            metadata: JSON.stringify({
              ...(await this.remoteValue(version.metadata, 'known')),
              ...options.extraMetadata,
            }),
            aliases: (options.aliases ?? []).map((alias) => ({ artifactCollectionName: version.name, alias })),
            clientID: crypto.randomUUID(),
            sequenceClientID: crypto.randomUUID(),
            enableDigestDeduplication: true,
          },
        },
      );
      remote = created.createArtifact.artifact;
      progress.checkpoint.artifactIds[version.ref] = remote.id;
      progress.onProgress(progress.checkpoint);
    }
    if (remote.state !== 'COMMITTED')
      remote = await this.uploadAndCommit(remote.id, version, manifest, uploads, progress);
    if (remote.versionIndex === null) throw new WandbRequestError(`W&B committed ${what} without a version number.`);
    const remoteRef = formatRef({
      kind: 'artifact',
      entity: this.config.entity,
      project: this.config.project,
      name: version.name,
      version: `v${remote.versionIndex}`,
    });
    await this.journal.record({
      item,
      kind: 'artifact',
      workflowId:
        options.workflowId ?? (typeof version.metadata.workflow_id === 'string' ? version.metadata.workflow_id : null),
      localRef: version.ref,
      remoteRef,
      remoteId: remote.id,
      state: 'published',
      detail: `${version.manifest.length} entries, digest ${digest}`,
    });
    return { remoteRef, id: remote.id, versionIndex: remote.versionIndex };
  }

  private async findArtifact(
    version: ArtifactVersion,
    digest: string,
    recordedId: string | undefined,
    aliases: string[] | undefined,
  ): Promise<RemoteArtifact | undefined> {
    if (recordedId) {
      const found = await this.client
        .graphql<{ artifact: RemoteArtifact | null }>(`read the artifact ${recordedId}`, artifactByIdQuery, {
          id: recordedId,
        })
        .catch((error: unknown) => {
          if (error instanceof WandbRequestError) return { artifact: null };
          throw error;
        });
      if (found.artifact) return found.artifact;
    }
    for (const alias of [...(aliases ?? []), 'latest']) {
      const data = await this.client.graphql<{ project: { artifact: RemoteArtifact | null } | null }>(
        `read ${version.name}:${alias}`,
        artifactByNameQuery,
        { entityName: this.config.entity, projectName: this.config.project, name: `${version.name}:${alias}` },
      );
      const found = data.project?.artifact;
      if (found && found.state === 'COMMITTED' && found.digest === digest) return found;
    }
    return undefined;
  }

  private async remoteManifest(
    version: ArtifactVersion,
  ): Promise<{ manifest: WandbManifestFile; uploads: Map<string, { file: string; size: number }> }> {
    const manifest: WandbManifestFile = {
      version: 1,
      storagePolicy: 'wandb-storage-policy-v1',
      storagePolicyConfig: { storageLayout: 'V2' },
      contents: {},
    };
    const uploads = new Map<string, { file: string; size: number }>();
    for (const entry of version.manifest) {
      if (entry.ref !== undefined) {
        // A reference without a checksum, as `add_reference(..., checksum=False)`: its digest is the URI.
        const ref = await this.remoteString(entry.ref);
        manifest.contents[entry.path] = { digest: ref, ref, size: 0 };
        continue;
      }
      const file = this.store.blobPathOf(entry.digest!);
      manifest.contents[entry.path] = { digest: await md5OfFile(file), size: entry.size };
      uploads.set(entry.path, { file, size: entry.size });
    }
    return { manifest, uploads };
  }

  private async uploadAndCommit(
    artifactId: string,
    version: ArtifactVersion,
    manifest: WandbManifestFile,
    uploads: Map<string, { file: string; size: number }>,
    progress: PublishProgress,
  ): Promise<RemoteArtifact> {
    const names = [...uploads.keys()];
    for (let start = 0; start < names.length; start += 500) {
      const batch = names.slice(start, start + 500);
      const data = await this.client.graphql<{
        createArtifactFiles: {
          files: { edges: { node: { name: string; uploadUrl: string | null; uploadHeaders: string[] | null } }[] };
        };
      }>(`upload the files of ${version.name}`, createArtifactFilesMutation, {
        input: {
          storageLayout: 'V2',
          artifactFiles: batch.map((name) => ({ artifactID: artifactId, name, md5: manifest.contents[name]!.digest })),
        },
      });
      const edges = data.createArtifactFiles.files.edges;
      for (const [index, edge] of edges.entries()) {
        const name = edge.node.name ?? batch[index]!;
        // No upload URL: the server holds these bytes already (W&B deduplicates by MD5).
        if (!edge.node.uploadUrl) continue;
        const upload = uploads.get(name)!;
        await this.client.upload(
          `upload ${name} of ${version.name}`,
          edge.node.uploadUrl,
          edge.node.uploadHeaders ?? [],
          { file: upload.file, size: upload.size },
          manifest.contents[name]!.digest,
        );
        progress.onProgress(progress.checkpoint);
      }
    }
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestUpload = await this.client.graphql<{
      createArtifactManifest: { artifactManifest: { file: { uploadUrl: string; uploadHeaders: string[] | null } } };
    }>(`upload the manifest of ${version.name}`, createArtifactManifestMutation, {
      input: {
        artifactID: artifactId,
        name: 'wandb_manifest.json',
        digest: crypto.createHash('md5').update(manifestBytes).digest('hex'),
        entityName: this.config.entity,
        projectName: this.config.project,
        type: 'FULL',
        includeUpload: true,
      },
    });
    const file = manifestUpload.createArtifactManifest.artifactManifest.file;
    await this.client.upload(
      `upload the manifest of ${version.name}`,
      file.uploadUrl,
      file.uploadHeaders ?? [],
      { bytes: manifestBytes },
      md5OfBytes(manifestBytes),
    );
    const committed = await this.client.graphql<{ commitArtifact: { artifact: RemoteArtifact } }>(
      `commit ${version.name}`,
      commitArtifactMutation,
      { input: { artifactID: artifactId } },
    );
    return committed.commitArtifact.artifact;
  }

  /** Links a remote artifact into `<org>/wandb-registry-<registry>/<collection>` (a repeated link returns the same member). */
  private async link(
    localRegistryRef: string,
    artifactId: string,
    registry: string,
    collection: string,
    aliases: string[],
    workflowId: string | null,
  ): Promise<string> {
    const item = `link:${localRegistryRef}`;
    const done = await this.journal.get(item);
    if (done?.remoteRef) return done.remoteRef;
    const projectName = `${REGISTRY_PROJECT_PREFIX}${registry}`;
    const data = await this.client.graphql<{ linkArtifact: { versionIndex: number | null } }>(
      `link into ${this.config.org}/${projectName}/${collection}`,
      linkArtifactMutation,
      {
        input: {
          artifactID: artifactId,
          artifactPortfolioName: collection,
          entityName: this.config.org,
          projectName,
          aliases: aliases.map((alias) => ({ artifactCollectionName: collection, alias })),
        },
      },
    );
    const remoteRef = formatRef({
      kind: 'registry',
      org: this.config.org,
      registry,
      collection,
      version: data.linkArtifact.versionIndex === null ? undefined : `v${data.linkArtifact.versionIndex}`,
    });
    await this.journal.record({
      item,
      kind: 'link',
      workflowId,
      localRef: localRegistryRef,
      remoteRef,
      remoteId: artifactId,
      state: 'published',
      detail: aliases.length > 0 ? `aliases ${aliases.join(', ')}` : null,
    });
    return remoteRef;
  }

  // ---------------------------------------------------------------- the pipeline's publications

  /**
   * The fine-tune stage: its run, the chat-model artifact with its files (logged by that run), and the link into
   * `RAG Chat Models/<app>` with the `candidate` alias.
   */
  async publishChatModel(
    input: { app: string; localRegistryRef: string; workflowId: string },
    progress: PublishProgress,
  ): Promise<RemoteRefs> {
    const linked = await this.store.registry.resolve(input.localRegistryRef);
    const artifact = linked.artifact;
    const refs: RemoteRefs = {};
    if (artifact.createdByRun) {
      refs.fineTuneRun = await this.publishRun(artifact.createdByRun, {
        workflowId: input.workflowId,
        displayName: `${input.app} fine-tune`,
      });
    }
    const remote = await this.publishArtifact(artifact.ref, progress, {
      runId: artifact.createdByRun ?? undefined,
      workflowId: input.workflowId,
    });
    refs.chatModelArtifact = remote.remoteRef;
    refs.chatModelRegistry = await this.link(
      formatRef({ ...parseRegistryVersion(input.localRegistryRef), version: `v${linked.version}` }),
      remote.id,
      registryNames.chatModels,
      collectionOf(input.localRegistryRef),
      [registryAliases.candidate],
      input.workflowId,
    );
    return refs;
  }

  /**
   * Before the local `production` move, and again right before the remote one: is the remote `production` of the
   * app's collection where this run's gate expects it — the champion, this run's own challenger (a retry), or a
   * RagModel the local history already replaced — or has a newer champion arrived there? Returns the reason when
   * it has, undefined when the move may go ahead. Versions are told apart by the local RagModel ref weft records
   * in each remote artifact's metadata (`weft_rag_model`); a version without it was published by someone else.
   */
  async productionConflict(input: {
    collectionRef: string;
    expectedRagModelRef: string | null;
    challengerRagModelRef: string;
  }): Promise<string | undefined> {
    const collection = collectionOf(input.collectionRef);
    const member = await this.remoteProduction(collection);
    if (!member) return undefined;
    const allowed = await this.replaceableRagModels(input.collectionRef, input.expectedRagModelRef);
    allowed.add(input.challengerRagModelRef);
    const metadata = parseMetadata(member.artifact.metadata);
    if (typeof metadata.weft_rag_model === 'string' && allowed.has(metadata.weft_rag_model)) return undefined;
    return (
      `production of ${this.config.org}/${REGISTRY_PROJECT_PREFIX}${registryNames.ragModels}/${collection} in W&B ` +
      `points at v${member.versionIndex}` +
      (typeof metadata.weft_rag_model === 'string' ? ` (${metadata.weft_rag_model})` : ', which weft did not publish') +
      `, not at what this run's gate compared against (${input.expectedRagModelRef ?? 'no production version'})`
    );
  }

  /** The RagModels `production` may move away from: the gate's champion and every earlier local production. */
  private async replaceableRagModels(collectionRef: string, expectedRagModelRef: string | null): Promise<Set<string>> {
    const refs = new Set<string>();
    if (expectedRagModelRef) refs.add(expectedRagModelRef);
    const history = await this.store.registry.aliasHistory(collectionRef, registryAliases.production).catch(() => []);
    const versions = await this.store.registry.versions(collectionRef).catch(() => []);
    for (const move of history) {
      const version = versions.find((candidate) => candidate.version === move.toVersion);
      const ragModelRef = version ? ragModelRefOfArtifact(version.artifact) : undefined;
      if (ragModelRef) refs.add(ragModelRef);
    }
    return refs;
  }

  private async remoteProduction(
    collection: string,
  ): Promise<{ versionIndex: number; artifact: { id: string; metadata: unknown } } | null> {
    const projectName = `${REGISTRY_PROJECT_PREFIX}${registryNames.ragModels}`;
    const data = await this.client.graphql<{
      project: {
        artifactCollection: {
          artifactMembership: { versionIndex: number; artifact: { id: string; metadata: unknown } } | null;
        } | null;
      } | null;
    }>(`read production of ${this.config.org}/${projectName}/${collection}`, collectionAliasQuery, {
      entityName: this.config.org,
      projectName,
      collection,
      alias: registryAliases.production,
    });
    return data.project?.artifactCollection?.artifactMembership ?? null;
  }

  /**
   * The publish stage: the RagModel (and every object, table, op and artifact it refers to), a publish run, the
   * reference artifact `<app>-rag-model` with the RagModel's digest as alias, the link into `RAG Models/<collection>`,
   * and — when `production` is given — the compare-and-move of `production` (read, compare, move: a newer champion
   * found there is a WandbAliasConflictError, never overwritten).
   */
  async publishRagModel(
    input: {
      localRegistryRef: string;
      workflowId: string | null;
      production?: { expectedRagModelRef: string | null };
    },
    progress: PublishProgress,
  ): Promise<RemoteRefs> {
    const linked = await this.store.registry.resolve(input.localRegistryRef);
    const localVersionRef = formatRef({
      ...parseRegistryVersion(input.localRegistryRef),
      version: `v${linked.version}`,
    });
    const collectionRef = formatRef({ ...parseRegistryVersion(input.localRegistryRef), version: undefined });
    const collection = collectionOf(input.localRegistryRef);
    const ragModelRef = ragModelRefOfArtifact(linked.artifact);
    if (!ragModelRef) {
      throw new WandbRequestError(`${localVersionRef} does not point at a RagModel; it cannot be published as one.`);
    }
    const refs: RemoteRefs = {};
    refs.ragModel = await this.remoteString(ragModelRef);
    const digest = digestOf(refs.ragModel);
    const runId = `publish-${crypto.createHash('sha256').update(localVersionRef).digest('hex').slice(0, 16)}`;
    await this.upsertRun(runId, 'publish', `publish ${collection} v${linked.version}`, {
      rag_model: { desc: null, value: refs.ragModel },
      workflow_id: { desc: null, value: input.workflowId },
    });
    const remote = await this.publishArtifact(linked.artifact.ref, progress, {
      runId,
      aliases: [digest],
      workflowId: input.workflowId,
      extraMetadata: { weft_rag_model: ragModelRef },
    });
    await this.finishRun(runId, 0, { rag_model: refs.ragModel });
    refs.publishRun = `${this.projectId}/runs/${runId}`;
    refs.ragModelArtifact = remote.remoteRef;
    refs.ragModelRegistry = await this.link(
      localVersionRef,
      remote.id,
      registryNames.ragModels,
      collection,
      [],
      input.workflowId,
    );
    if (input.production) {
      const item = `production:${localVersionRef}`;
      const done = await this.journal.get(item);
      if (done?.state === 'published' && done.remoteRef) {
        refs.production = done.remoteRef;
        return refs;
      }
      const conflict = await this.productionConflict({
        collectionRef,
        expectedRagModelRef: input.production.expectedRagModelRef,
        challengerRagModelRef: ragModelRef,
      });
      if (conflict) {
        await this.journal.record({
          item,
          kind: 'production',
          workflowId: input.workflowId,
          localRef: localVersionRef,
          remoteRef: null,
          remoteId: remote.id,
          state: 'superseded',
          detail: conflict,
        });
        throw new WandbAliasConflictError(`${conflict}; the challenger was not made production in W&B.`);
      }
      const projectName = `${REGISTRY_PROJECT_PREFIX}${registryNames.ragModels}`;
      await this.client.graphql(
        `move production of ${this.config.org}/${projectName}/${collection}`,
        addAliasesMutation,
        {
          input: {
            artifactID: remote.id,
            aliases: [
              {
                artifactCollectionName: collection,
                alias: registryAliases.production,
                entityName: this.config.org,
                projectName,
              },
            ],
          },
        },
      );
      refs.production = `${refs.ragModelRegistry.replace(/:v\d+$/, '')}:${registryAliases.production}`;
      await this.journal.record({
        item,
        kind: 'production',
        workflowId: input.workflowId,
        localRef: localVersionRef,
        remoteRef: refs.production,
        remoteId: remote.id,
        state: 'published',
        detail: refs.ragModelRegistry,
      });
    }
    return refs;
  }

  /**
   * The evaluation stage: its run (same id, `wandb-run-id` on every call) and every call recorded under it —
   * `Evaluation.evaluate`, predict-and-score, predictions and scorer calls — upserted by id with the objects,
   * tables and ops they refer to. A retry re-sends from the last batch the checkpoint holds; a re-sent call is
   * merged by id, never counted twice.
   */
  async publishEvaluation(
    input: { wandbRunId: string; workflowId: string | null },
    progress: PublishProgress,
  ): Promise<RemoteRefs> {
    const item = `evaluation:${input.wandbRunId}`;
    const done = await this.journal.get(item);
    if (done?.remoteRef) return { evaluationRun: done.remoteRef, evaluationCalls: done.detail ?? '' };
    const run = await this.store.runs.get(input.wandbRunId);
    const evaluationRef = typeof run.config.evaluation === 'string' ? run.config.evaluation : undefined;
    const scope = evaluationRef ? parseRef(evaluationRef) : undefined;
    const calls = await this.store.calls.query({
      ...(scope && scope.kind === 'object' ? { entity: scope.entity, project: scope.project } : {}),
      attributes: { 'wandb-run-id': run.id },
      limit: 100_000,
    });
    // Parents before children, so a server that checks parents (or a reader mid-way) sees whole trees.
    calls.sort((left, right) => left.startedAt.localeCompare(right.startedAt) || left.id.localeCompare(right.id));
    const runRef = await this.publishRun(run.id, { workflowId: input.workflowId });
    progress.checkpoint.sentCallBatches ??= {};
    const firstBatch = progress.checkpoint.sentCallBatches[run.id] ?? 0;
    for (let batch = firstBatch; batch * CALL_BATCH < calls.length; batch += 1) {
      const items = [];
      for (const call of calls.slice(batch * CALL_BATCH, (batch + 1) * CALL_BATCH)) {
        items.push(...callUpsertItems(await this.remoteCall(call), this.projectId));
      }
      await this.client.postJson(
        `record ${items.length} call items of the evaluation run ${run.id}`,
        this.client.traceUrl('/call/upsert_batch'),
        { batch: items },
      );
      progress.checkpoint.sentCallBatches[run.id] = batch + 1;
      progress.onProgress(progress.checkpoint);
    }
    const detail = `${calls.length} calls`;
    await this.journal.record({
      item,
      kind: 'evaluation',
      workflowId: input.workflowId ?? run.workflowId,
      localRef: `run:${run.id}`,
      remoteRef: runRef,
      remoteId: run.id,
      state: 'published',
      detail,
    });
    return { evaluationRun: runRef, evaluationCalls: detail };
  }

  /** The W&B run of an evaluation: the `wandb-run-id` its EvaluationResult records. */
  async evaluationRunOf(evaluationResultRef: string): Promise<string> {
    const value = (await this.store.objects.get(evaluationResultRef)).value as { 'wandb-run-id'?: unknown };
    const runId = value['wandb-run-id'];
    if (typeof runId !== 'string') {
      throw new WandbRequestError(`${evaluationResultRef} names no wandb-run-id; its evaluation cannot be published.`);
    }
    return runId;
  }

  private async remoteCall(call: CallRecord): Promise<CallInput> {
    return {
      id: call.id,
      entity: this.config.entity,
      project: this.config.project,
      opName: await this.remoteString(call.opName),
      displayName: call.displayName ?? undefined,
      traceId: call.traceId,
      parentId: call.parentId ?? undefined,
      startedAt: call.startedAt,
      endedAt: call.endedAt ?? undefined,
      inputs: await this.remoteValue(call.inputs),
      output: await this.remoteValue(call.output),
      attributes: await this.remoteValue(call.attributes),
      summary: await this.remoteValue(call.summary),
      exception: call.exception ?? undefined,
    };
  }

  // ---------------------------------------------------------------- refs: local → remote

  /** A JSON value with every local ref in it replaced by the remote one (publishing what it points at). */
  async remoteValue<T>(value: T, artifacts: ArtifactRefMode = 'publish'): Promise<T> {
    if (typeof value === 'string') return (await this.remoteString(value, artifacts)) as T;
    if (Array.isArray(value)) {
      const mapped = [];
      for (const item of value) mapped.push(await this.remoteValue(item, artifacts));
      return mapped as T;
    }
    if (value !== null && typeof value === 'object') {
      const mapped: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) mapped[key] = await this.remoteValue(item, artifacts);
      return mapped as T;
    }
    return value;
  }

  /**
   * One string: a weave ref of the local store becomes the ref of the same object, table or op published remotely
   * (content-addressed, so its digest is the remote server's); an artifact or registry ref becomes the remote
   * artifact version (published when it is not yet); anything else is returned as it is.
   */
  async remoteString(text: string, artifacts: ArtifactRefMode = 'publish'): Promise<string> {
    const weave = /^weave:\/\/\/([^/]+)\/([^/]+)\/(object|op|table|call)\/([^/]+)(.*)$/s.exec(text);
    if (weave) {
      const [, entity, project, kind, tail, rest] = weave as unknown as [
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      if (kind === 'call') return `weave:///${this.projectId}/call/${tail}${rest}`;
      const head = await this.remoteWeave(entity, project, kind as 'object' | 'op' | 'table', tail);
      return `${head}${rest}`;
    }
    if (text.startsWith('wandb-artifact:///')) {
      let parsed;
      try {
        parsed = parseRef(text);
      } catch {
        return text;
      }
      try {
        const version =
          parsed.kind === 'registry'
            ? (await this.store.registry.resolve(text)).artifact
            : parsed.kind === 'artifact'
              ? await this.store.artifacts.get(text)
              : undefined;
        if (!version) return text;
        if (artifacts === 'known') return (await this.journal.get(`artifact:${version.ref}`))?.remoteRef ?? text;
        return (await this.publishArtifact(version.ref, untracked())).remoteRef;
      } catch (error) {
        if (error instanceof NotFoundError) return text;
        throw error;
      }
    }
    return text;
  }

  private async remoteWeave(
    entity: string,
    project: string,
    kind: 'object' | 'op' | 'table',
    tail: string,
  ): Promise<string> {
    const localHead = `weave:///${entity}/${project}/${kind}/${tail}`;
    const cached = this.objectCache.get(localHead);
    if (cached) return cached;
    let remoteHead: string;
    try {
      if (kind === 'table') {
        const rows = await this.store.tables.rows(localHead);
        const mapped = [];
        for (const row of rows) mapped.push(await this.remoteValue(row.value));
        const created = (await this.client.postJson(
          `create a table of ${rows.length} rows`,
          this.client.traceUrl('/table/create'),
          {
            table: { project_id: this.projectId, rows: mapped },
          },
        )) as { digest: string };
        remoteHead = `weave:///${this.projectId}/table/${created.digest}`;
      } else {
        const colon = tail.lastIndexOf(':');
        const name = tail.slice(0, colon);
        const object = await this.store.objects.get(`weave:///${entity}/${project}/object/${tail}`);
        const value = (await this.remoteValue(object.value)) as Record<string, unknown>;
        await this.publishFiles(value, entity, project);
        const created = (await this.client.postJson(`publish the object ${name}`, this.client.traceUrl('/obj/create'), {
          obj: { project_id: this.projectId, object_id: name, val: value },
        })) as { digest: string };
        remoteHead = `weave:///${this.projectId}/${kind}/${name}:${created.digest}`;
      }
    } catch (error) {
      // Not in the local store (a ref to something weft never held): keep the ref, re-homed to the remote project.
      if (!(error instanceof NotFoundError)) throw error;
      remoteHead = `weave:///${this.projectId}/${kind}/${tail}`;
    }
    this.objectCache.set(localHead, remoteHead);
    return remoteHead;
  }

  /** An op object's code files (`files: {name: digest}`) go up before the op, as the SDK saves them. */
  private async publishFiles(value: Record<string, unknown>, entity: string, project: string): Promise<void> {
    const files = value.files;
    if (files === null || typeof files !== 'object' || Array.isArray(files)) return;
    for (const [name, digest] of Object.entries(files as Record<string, unknown>)) {
      if (typeof digest !== 'string') continue;
      let bytes: Buffer;
      try {
        bytes = await this.store.files.get(digest, { entity, project });
      } catch (error) {
        if (error instanceof NotFoundError) continue;
        throw error;
      }
      const form = new FormData();
      form.set('project_id', this.projectId);
      form.set('file', new Blob([new Uint8Array(bytes)]), name);
      await this.client.postForm(`upload the file ${name}`, this.client.traceUrl('/file/create'), form);
    }
  }

  // ---------------------------------------------------------------- status and sync

  async publicationsOf(workflowId: string): Promise<Publication[]> {
    return this.journal.ofWorkflow(workflowId);
  }
}

function parseRegistryVersion(ref: string) {
  const parsed = parseRef(ref);
  if (parsed.kind !== 'registry') throw new WandbRequestError(`${ref} is not a registry ref.`);
  return parsed;
}

function collectionOf(registryRef: string): string {
  return parseRegistryVersion(registryRef).collection;
}

function versionOf(artifactRef: string): number {
  return Number(/:v(\d+)$/.exec(artifactRef)?.[1] ?? -1);
}

/** The digest of a `weave:///…/object/<Name>:<digest>` ref. */
function digestOf(objectRef: string): string {
  return /:([A-Za-z0-9]+)$/.exec(objectRef)?.[1] ?? objectRef;
}

function parseMetadata(metadata: unknown): Record<string, unknown> {
  if (typeof metadata === 'string') {
    try {
      const parsed: unknown = JSON.parse(metadata);
      if (parsed !== null && typeof parsed === 'object') return parsed as Record<string, unknown>;
    } catch {
      return {};
    }
  }
  return metadata !== null && typeof metadata === 'object' ? (metadata as Record<string, unknown>) : {};
}
