import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, projectRoot, type WeftConfig } from '../../lib/config/config';
import { openLineageStore, type LineageStore } from '../../lib/lineage';
import { createRagRuntime, type RagRuntime } from '../../lib/rag';
import { openVectorStore, type VectorStore } from '../../lib/vectors';

/** Where `bash scripts/setup.sh` builds the demo models; read before any test points WEFT_HOME at a temp folder. */
export const builtModelsDirectory = path.resolve(
  process.env.WEFT_MODELS_DIR ?? path.join(process.env.WEFT_HOME ?? path.join(projectRoot, '.weft'), 'models'),
);
export const demoDataDirectory = path.join(projectRoot, 'data', 'climate');

/** The demo models are a prerequisite: a missing build fails the suite (never skips it) and says how to build them. */
export function requireBuiltModels(): void {
  const required = [
    path.join(builtModelsDirectory, 'base-chat', 'onnx', 'model.onnx'),
    path.join(builtModelsDirectory, 'minilm', 'onnx', 'model.onnx'),
    path.join(builtModelsDirectory, 'minilm', 'onnx', 'weft-model.json'),
  ];
  const missing = required.filter((file) => !fs.existsSync(file));
  if (missing.length > 0) {
    throw new Error(`The demo models are not built (missing ${missing.join(', ')}): run bash scripts/setup.sh`);
  }
}

export interface RagTestHome {
  home: string;
  config: WeftConfig;
  store: LineageStore;
  vectors: VectorStore;
  runtime: RagRuntime;
  close(): Promise<void>;
}

/** A fresh WEFT_HOME with a SQLite lineage store and the embedded vector store; models from the shared build. */
export async function openRagTestHome(prefix: string, home?: string): Promise<RagTestHome> {
  const folder = home ?? fs.mkdtempSync(path.join(os.tmpdir(), `weft-rag-${prefix}-`));
  const config = parseConfig({ WEFT_HOME: folder, WEFT_MODELS_DIR: builtModelsDirectory });
  const store = await openLineageStore(config.lineageUrl);
  const vectors = await openVectorStore({ path: path.join(folder, 'vectors.db') });
  return {
    home: folder,
    config,
    store,
    vectors,
    runtime: createRagRuntime({ store, vectors, config }),
    async close() {
      await vectors.close();
      await store.close();
    },
  };
}
