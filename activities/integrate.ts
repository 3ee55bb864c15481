import type { LineageStore } from '../lib/lineage';
import { productionRagModelRef } from '../lib/rag/registries';
import type { LifecyclePipelineActivities } from '../workflows/contracts/lifecycle';
import { atBoundary, invalidInput } from './boundary';

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

export function createIntegrateActivities({
  store,
  org,
  rag,
}: IntegrateDependencies): Pick<LifecyclePipelineActivities, 'resolveChampion' | 'integrate'> {
  return atBoundary<Pick<LifecyclePipelineActivities, 'resolveChampion' | 'integrate'>>({
    async resolveChampion({ app, ragModelRef }) {
      const productionRef = await productionRagModelRef(store, org, app);
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
