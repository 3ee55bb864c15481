import { demoNames } from './demo-project';
import { formatRef, NotFoundError, type ArtifactVersion, type LineageStore, type LinkedVersion } from '../lineage';

/**
 * The registry vocabulary of the app lifecycle, in W&B Registry terms: which registries exist, which collection an
 * app's versions go to, what the aliases mean, and how `production` resolves to a RagModel. Activities, the
 * selector, the CLI and tests all spell these through this module.
 */

/** The two registries the pipeline writes: fine-tuned chat models, and published app versions (RagModels). */
export const registryNames = { chatModels: 'RAG Chat Models', ragModels: 'RAG Models' } as const;

/** The artifact type each registry accepts. */
export const registryArtifactTypes = { chatModels: 'model', ragModels: 'rag-model' } as const;

/**
 * Aliases with a meaning in the lifecycle: `production` is the app version users get and the gate's champion;
 * `candidate` is the newest fine-tuned chat model of an app.
 */
export const registryAliases = { production: 'production', candidate: 'candidate' } as const;

/**
 * Apps whose collection in `RAG Models` is not named after the app. The demo app keeps the seed's `RAG Model`, the
 * collection its earlier runs published into, so stores written before one-collection-per-app keep resolving.
 */
export const ragModelCollectionNames: Readonly<Record<string, string>> = { [demoNames.app]: 'RAG Model' };

/** The app's collection in `RAG Models`: its configured name, else the app's own name. */
export function ragModelCollectionName(app: string): string {
  return Object.hasOwn(ragModelCollectionNames, app) ? ragModelCollectionNames[app]! : app;
}

/** `wandb-artifact:///<org>/wandb-registry-<Registry>/<Collection>` (no version). */
export function registryCollectionRef(org: string, registry: string, collection: string): string {
  return formatRef({ kind: 'registry', org, registry, collection });
}

/** The app's collection of fine-tuned chat models (named after the app). */
export function chatModelCollectionRef(org: string, app: string): string {
  return registryCollectionRef(org, registryNames.chatModels, app);
}

/** The app's collection of published RagModels: one per app, so each app has its own `production`. */
export function ragModelCollectionRef(org: string, app: string): string {
  return registryCollectionRef(org, registryNames.ragModels, ragModelCollectionName(app));
}

/** Version number an alias of a registry collection points at, or null when it (or the collection) is unassigned. */
export async function aliasVersion(store: LineageStore, collectionRef: string, alias: string): Promise<number | null> {
  try {
    return (await store.registry.resolve(`${collectionRef}:${alias}`)).version;
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

const ragModelObjectRef = /^weave:\/\/\/[^/]+\/[^/]+\/object\/[^/:]+:[^/]+$/;

/**
 * The RagModel an app artifact stands for: a reference entry to its `weave:///…/object/RagModel:<digest>` (how a
 * Weave object is put in a W&B registry), or the `url` (or `rag_model_ref`) in its metadata.
 */
export function ragModelRefOfArtifact(artifact: ArtifactVersion): string | undefined {
  const reference = artifact.manifest.find(
    (entry) => entry.ref !== undefined && ragModelObjectRef.test(entry.ref) && entry.ref.includes('/object/RagModel:'),
  );
  if (reference?.ref) return reference.ref;
  for (const candidate of [artifact.metadata.url, artifact.metadata.rag_model_ref]) {
    if (typeof candidate === 'string' && ragModelObjectRef.test(candidate)) return candidate;
  }
  return undefined;
}

/** The RagModel the app's `production` alias points at, or null when the app has not published one. */
export async function productionRagModelRef(store: LineageStore, org: string, app: string): Promise<string | null> {
  try {
    const linked = await store.registry.resolve(`${ragModelCollectionRef(org, app)}:${registryAliases.production}`);
    return ragModelRefOfArtifact(linked.artifact) ?? null;
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

/** The version of a RagModels collection that links the given RagModel (e.g. the champion a gate compared against). */
export async function linkedVersionOfRagModel(
  store: LineageStore,
  collectionRef: string,
  ragModelRef: string,
): Promise<LinkedVersion | undefined> {
  let versions: LinkedVersion[];
  try {
    versions = await store.registry.versions(collectionRef);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
  return versions.find((version) => ragModelRefOfArtifact(version.artifact) === ragModelRef);
}
