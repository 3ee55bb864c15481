import path from 'node:path';
import type { WeftConfig } from './config/config';
import { openLineageStore, type LineageStore, type LineageStoreOptions } from './lineage';
import { closeRagInferenceResources, createRagRuntime, type RagRuntime } from './rag';
import { modelCacheFor } from './rag/model-cache';
import { openVectorStore, type OpenVectorStoreOptions, type VectorStore } from './vectors';
import type { InferenceLogger } from './inference';

/** The adapters a worker process shares across its activities: opened once, closed on shutdown. */
export interface WorkerServices {
  store: LineageStore;
  vectors: VectorStore;
  /** The RAG runtime: the composition roots hand it to the activities as their prediction and integration ports. */
  rag: RagRuntime;
  materializeModel(artifactRef: string, requiredFiles?: string[]): Promise<string>;
  close(): Promise<void>;
}

/** How the configuration opens the lineage store: its default scope, and blobs under WEFT_HOME (a shared volume). */
export function lineageStoreOptions(config: WeftConfig): LineageStoreOptions {
  return {
    defaults: { entity: config.entity, project: config.project, org: config.org },
    ...(config.lineageUrl.startsWith('sqlite://') ? {} : { blobDirectory: path.join(config.home, 'blobs') }),
  };
}

/** How the configuration opens the vector store: Qdrant at WEFT_VECTOR_URL, else sqlite-vec in WEFT_HOME. */
export function vectorStoreOptions(config: WeftConfig): OpenVectorStoreOptions {
  return config.vectorUrl
    ? { url: config.vectorUrl, apiKey: config.vectorApiKey }
    : { path: path.join(config.home, 'vectors.db') };
}

export async function openWorkerServices(config: WeftConfig, logger?: InferenceLogger): Promise<WorkerServices> {
  const store = await openLineageStore(config.lineageUrl, lineageStoreOptions(config));
  const vectors = await openVectorStore(vectorStoreOptions(config));
  // One model cache per process: predict, ingest and the fine-tune's base model materialise through it.
  const modelCache = modelCacheFor(store, config.home);
  const rag = createRagRuntime({ store, vectors, config, logger, modelCache });

  return {
    store,
    vectors,
    rag,
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
