import { NotFoundError, type LineageStore } from '../lineage';
import { registryAliases, registryCollectionRef, registryNames } from '../rag/registries';
import { WandbAliasConflictError } from './errors';
import { untracked, type WandbPublisher } from './publisher';

/** One local item `weft sync` looked at, and what became of it. */
export interface SyncEntry {
  item: string;
  /** `already`: the journal holds it; `published`: written now; `superseded`: W&B has a newer production. */
  outcome: 'already' | 'published' | 'superseded';
  remoteRef: string | null;
  detail: string;
}

async function collectionsOf(store: LineageStore, org: string, registry: string): Promise<string[]> {
  try {
    return (await store.registry.show(registry, org)).collections.map((collection) => collection.name);
  } catch (error) {
    if (error instanceof NotFoundError) return [];
    throw error;
  }
}

/**
 * Publishes whatever the local store holds that the journal does not show as published on this W&B server: every
 * chat-model version of `RAG Chat Models` (with its run), every finished evaluation run with its calls, every
 * version of `RAG Models`, and each app's `production`. Idempotent: a second sync finds everything `already`.
 * Errors other than a superseded production stop the sync (an outage: run it again).
 */
export async function syncToWandb(
  store: LineageStore,
  publisher: WandbPublisher,
  org: string,
  onEntry: (entry: SyncEntry) => void = () => undefined,
): Promise<SyncEntry[]> {
  const entries: SyncEntry[] = [];
  const report = (entry: SyncEntry) => {
    entries.push(entry);
    onEntry(entry);
  };
  const journal = publisher.journal;

  for (const app of await collectionsOf(store, org, registryNames.chatModels)) {
    const collectionRef = registryCollectionRef(org, registryNames.chatModels, app);
    for (const version of await store.registry.versions(collectionRef)) {
      const localRef = `${collectionRef}:v${version.version}`;
      const done = await journal.get(`link:${localRef}`);
      if (done) {
        report({ item: localRef, outcome: 'already', remoteRef: done.remoteRef, detail: 'chat model' });
        continue;
      }
      const workflowId =
        typeof version.artifact.metadata.workflow_id === 'string' ? version.artifact.metadata.workflow_id : '';
      const refs = await publisher.publishChatModel({ app, localRegistryRef: localRef, workflowId }, untracked());
      report({ item: localRef, outcome: 'published', remoteRef: refs.chatModelRegistry ?? null, detail: 'chat model' });
    }
  }

  for (const run of await store.runs.list({ jobType: 'evaluation', limit: 10_000 })) {
    if (run.state !== 'finished') continue;
    const item = `run:${run.id}`;
    const done = await journal.get(`evaluation:${run.id}`);
    if (done) {
      report({ item, outcome: 'already', remoteRef: done.remoteRef, detail: done.detail ?? 'evaluation' });
      continue;
    }
    const refs = await publisher.publishEvaluation({ wandbRunId: run.id, workflowId: run.workflowId }, untracked());
    report({ item, outcome: 'published', remoteRef: refs.evaluationRun ?? null, detail: refs.evaluationCalls ?? '' });
  }

  for (const collection of await collectionsOf(store, org, registryNames.ragModels)) {
    const collectionRef = registryCollectionRef(org, registryNames.ragModels, collection);
    const versions = await store.registry.versions(collectionRef);
    const production = versions.find((version) => version.aliases.includes(registryAliases.production));
    for (const version of versions) {
      const localRef = `${collectionRef}:v${version.version}`;
      const isProduction = version === production;
      const item = isProduction ? `production:${localRef}` : `link:${localRef}`;
      const done = await journal.get(item);
      if (done) {
        report({
          item: localRef,
          outcome: done.state === 'superseded' ? 'superseded' : 'already',
          remoteRef: done.remoteRef,
          detail: isProduction ? 'production' : 'RagModel',
        });
        continue;
      }
      try {
        const refs = await publisher.publishRagModel(
          {
            localRegistryRef: localRef,
            workflowId:
              typeof version.artifact.metadata.workflow_id === 'string' ? version.artifact.metadata.workflow_id : null,
            // production follows the local one; what W&B holds must be something local history already replaced.
            ...(isProduction ? { production: { expectedRagModelRef: null } } : {}),
          },
          untracked(),
        );
        report({
          item: localRef,
          outcome: 'published',
          remoteRef: refs.production ?? refs.ragModelRegistry ?? null,
          detail: isProduction ? 'production' : 'RagModel',
        });
      } catch (error) {
        if (!(error instanceof WandbAliasConflictError)) throw error;
        report({ item: localRef, outcome: 'superseded', remoteRef: null, detail: error.message });
      }
    }
  }
  return entries;
}
