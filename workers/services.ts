import path from 'node:path';
import type { WeftConfig } from '../lib/config/config';
import { openLineageStore, type LineageStore } from '../lib/lineage';
import { closeRagInferenceResources, createRagRuntime, type RagRuntime } from '../lib/rag';
import { ModelCache } from '../lib/rag/model-cache';
import { openVectorStore, type VectorStore } from '../lib/vectors';
import type { InferenceLogger } from '../lib/inference';
import type { RagPredictionService } from '../activities/evaluation';
import type { RagAppService } from '../activities/integrate';

/** The adapters a worker process shares across its activities: opened once, closed on shutdown. */
export interface WorkerServices {
  store: LineageStore;
  vectors: VectorStore;
  rag: RagRuntime;
  predictions: RagPredictionService;
  apps: RagAppService;
  materializeModel(artifactRef: string, requiredFiles?: string[]): Promise<string>;
  close(): Promise<void>;
}

export async function openWorkerServices(config: WeftConfig, logger?: InferenceLogger): Promise<WorkerServices> {
  const store = await openLineageStore(config.lineageUrl, {
    defaults: { entity: config.entity, project: config.project, org: config.org },
  });
  const vectors = await openVectorStore({
    url: config.vectorUrl,
    apiKey: config.vectorApiKey,
    path: config.vectorUrl ? undefined : path.join(config.home, 'vectors.db'),
  });
  const rag = createRagRuntime({ store, vectors, config, logger });
  const modelCache = new ModelCache(store, path.join(config.home, 'cache', 'models'));

  const predictions: RagPredictionService = {
    predict: (ragModelRef, questions) => rag.predict(ragModelRef, questions),
    async cacheIdentity(ragModelRef) {
      const resolved = await rag.resolveRagModel(ragModelRef);
      const contentVersion = await rag.collectionContentVersion(resolved.ragModel.collectionAlias);
      return { key: `${resolved.ref}|${contentVersion}`, sampled: resolved.chatModel.generation.temperature > 0 };
    },
  };

  const apps: RagAppService = {
    async integrateChatModel(ragModelRef, chatModelArtifactRef) {
      const current = await rag.resolveRagModel(ragModelRef);
      const chatModel = await rag.publishChatModel({
        modelArtifactRef: chatModelArtifactRef,
        generation: current.chatModel.generation,
        device: current.chatModel.device,
      });
      const ragModel = await rag.withChatModel(current.ref, chatModel.ref);
      return { ragModelRef: ragModel.ref, chatModelRef: chatModel.ref };
    },
  };

  return {
    store,
    vectors,
    rag,
    predictions,
    apps,
    async materializeModel(artifactRef, requiredFiles = ['model.onnx']) {
      return (await modelCache.materialize(artifactRef, requiredFiles)).directory;
    },
    async close() {
      await closeRagInferenceResources();
      await vectors.close();
      await store.close();
    },
  };
}
