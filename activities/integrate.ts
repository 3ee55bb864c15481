import { NotFoundError, type LineageStore } from '../lib/lineage';
import type { LifecyclePipelineActivities } from '../workflows/contracts/lifecycle';
import { atBoundary, invalidInput } from './boundary';
import { ragModelCollection, ragModelRegistry, registryCollectionRef } from './registry';

/** What integration needs from the RAG runtime (lib/rag implements it). */
export interface RagAppService {
  /**
   * A new RagModel version equal to `ragModelRef` with its ChatModel swapped for one that uses
   * `chatModelArtifactRef` (same generation parameters); unchanged parts keep their refs.
   */
  integrateChatModel(
    ragModelRef: string,
    chatModelArtifactRef: string,
  ): Promise<{ ragModelRef: string; chatModelRef: string }>;
}

export interface IntegrateDependencies {
  store: LineageStore;
  org: string;
  rag: RagAppService;
}

/** The RagModel object that the `production` alias of the RAG Models registry points at, or null. */
export async function productionRagModelRef(store: LineageStore, org: string): Promise<string | null> {
  const collectionRef = registryCollectionRef(org, ragModelRegistry, ragModelCollection);
  try {
    const linked = await store.registry.resolve(`${collectionRef}:production`);
    const url = linked.artifact.metadata.url;
    return typeof url === 'string' ? url : null;
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

export function createIntegrateActivities({
  store,
  org,
  rag,
}: IntegrateDependencies): Pick<LifecyclePipelineActivities, 'resolveChampion' | 'integrate'> {
  return atBoundary<Pick<LifecyclePipelineActivities, 'resolveChampion' | 'integrate'>>({
    async resolveChampion({ ragModelRef }) {
      const productionRef = await productionRagModelRef(store, org);
      const champion = ragModelRef ?? productionRef;
      if (champion) await store.objects.get(champion);
      return { ragModelRef: champion, productionRef };
    },

    async integrate({ app, baseRagModelRef, chatModelArtifactRef }) {
      if (baseRagModelRef === null) {
        throw invalidInput(
          `App '${app}' has no RagModel to integrate the new chat model into: no 'production' RAG Model exists yet. ` +
            'Pass one with --rag <RagModel ref> (weft demo bootstraps RagModel v0), or publish one first.',
        );
      }
      return rag.integrateChatModel(baseRagModelRef, chatModelArtifactRef);
    },
  });
}
