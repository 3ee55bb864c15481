import { formatRef, NotFoundError, type LineageStore } from '../lineage';
import { appObjectNames } from './app-objects';
import { RagModelNotFoundError } from './errors';
import { ragModelRefOfArtifact, registryAliases, registryCollectionRef, registryNames } from './registries';

/**
 * The RagModel behind an alias of the `RAG Models` registry: the one collection (app) holding that alias, or null
 * when none does. Several apps holding it is ambiguous, and the message lists their refs to choose from.
 */
async function fromRegistryAlias(store: LineageStore, org: string, alias: string): Promise<string | null> {
  let collections: { name: string; aliases: string[] }[];
  try {
    collections = (await store.registry.show(registryNames.ragModels, org)).collections;
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
  const holding = collections.filter((collection) => collection.aliases.some((entry) => entry.startsWith(`${alias}=`)));
  if (holding.length === 0) return null;
  const refs = holding.map(
    (collection) => `${registryCollectionRef(org, registryNames.ragModels, collection.name)}:${alias}`,
  );
  if (refs.length > 1) {
    throw new RagModelNotFoundError(
      `Several apps in the "${registryNames.ragModels}" registry have a "${alias}" version; pass one with --rag: ${refs.join(', ')}.`,
    );
  }
  return fromRegistry(store, refs[0]);
}

export interface SelectorScope {
  entity: string;
  project: string;
  org: string;
}

export interface SelectedRagModel {
  ragModelRef: string;
  /** How it was found: an explicit ref, a registry alias or version, or the newest RagModel object. */
  source: 'ref' | 'registry' | 'latest';
}

async function fromRegistry(store: LineageStore, registryRef: string): Promise<string> {
  const linked = await store.artifacts.get(registryRef);
  const ragModelRef = ragModelRefOfArtifact(linked);
  if (!ragModelRef) {
    throw new RagModelNotFoundError(
      `${registryRef} links ${linked.ref}, which names no RagModel (no weave:///…/object/RagModel:… reference or rag_model_ref metadata).`,
    );
  }
  return ragModelRef;
}

/**
 * Resolves what a user typed for `--rag`: a `weave:///` ref, a registry or artifact ref, `RagModel:vN` (or any
 * `<Name>:<digest|vN|latest>` in the default project), or a word naming an alias of an app's collection in the
 * `RAG Models` registry (`production`, `staging`). Without a selector: `production` when it exists, else the newest RagModel;
 * null when there is neither.
 */
export async function selectRagModel(
  store: LineageStore,
  selector: string | undefined,
  scope: SelectorScope,
): Promise<SelectedRagModel | null> {
  if (selector === undefined) {
    const production = await fromRegistryAlias(store, scope.org, registryAliases.production);
    if (production !== null) return { ragModelRef: production, source: 'registry' };
    try {
      const latest = await store.objects.latest(appObjectNames.ragModel, scope);
      return { ragModelRef: latest.ref, source: 'latest' };
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }
  const trimmed = selector.trim();
  if (trimmed.startsWith('weave:///')) return { ragModelRef: trimmed, source: 'ref' };
  try {
    if (trimmed.startsWith('wandb-artifact:///')) {
      return { ragModelRef: await fromRegistry(store, trimmed), source: 'registry' };
    }
    const named = /^([A-Za-z0-9_][A-Za-z0-9_.-]*):([A-Za-z0-9_.-]+)$/.exec(trimmed);
    if (named) {
      const ref = formatRef({
        kind: 'object',
        entity: scope.entity,
        project: scope.project,
        name: named[1],
        digest: named[2],
      });
      return { ragModelRef: ref, source: 'ref' };
    }
    if (/^[A-Za-z0-9_-]+$/.test(trimmed)) {
      const aliased = await fromRegistryAlias(store, scope.org, trimmed);
      if (aliased !== null) return { ragModelRef: aliased, source: 'registry' };
      throw new RagModelNotFoundError(
        `No app in the "${registryNames.ragModels}" registry has a "${trimmed}" version; pass a RagModel ref (weave:///…/object/RagModel:<digest>) or RagModel:vN instead.`,
      );
    }
  } catch (error) {
    if (error instanceof NotFoundError) {
      throw new RagModelNotFoundError(`No RagModel for "${selector}": ${error.message}`);
    }
    throw error;
  }
  throw new RagModelNotFoundError(
    `"${selector}" does not name a RagModel; pass weave:///<entity>/<project>/object/RagModel:<digest>, RagModel:vN, or a registry alias such as production.`,
  );
}
