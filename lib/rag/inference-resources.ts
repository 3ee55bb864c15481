import { loadOnce } from '../common/load-once';
import {
  closeTorchDecodeEngines,
  createMicroBatcher,
  loadChatModel,
  loadEmbeddingModel,
  type ChatModelRuntime,
  type CpuWeights,
  type DecodeEngineName,
  type EmbeddingModelRuntime,
  type ExecutionProvider,
  type GreedyInGraph,
  type InferenceLogger,
  type MicroBatcher,
} from '../inference';

/**
 * Loaded models of this process, shared by every runtime in it: one chat model runtime and one micro-batcher per
 * (folder, provider, device), so concurrent predict calls (a gpu worker's activity slots) share forward passes.
 */
export interface ChatModelResources {
  runtime: ChatModelRuntime;
  batcher: MicroBatcher;
}

export interface DevicePlacement {
  executionProvider: ExecutionProvider;
  deviceId: number;
  logger?: InferenceLogger;
  /** WEFT_GREEDY_IN_GRAPH; default the runtime's (`auto`). */
  greedyInGraph?: GreedyInGraph;
  /** WEFT_CPU_WEIGHTS; default `float32`. */
  cpuWeights?: CpuWeights;
  /** WEFT_ENGINE; default `onnxruntime`. */
  engine?: DecodeEngineName;
  /** The torch engine's Python (WEFT_PYTHON) and Inductor mode (WEFT_TORCH_COMPILE). */
  python?: string;
  torchCompile?: string;
}

/** Rows one forward pass carries across all concurrent predict calls of the process. */
const sharedMaxBatchSize = 16;

const chatModels = new Map<string, Promise<ChatModelResources>>();
const embeddingModels = new Map<string, Promise<EmbeddingModelRuntime>>();

function keyOf(directory: string, placement: DevicePlacement): string {
  return `${directory}|${placement.executionProvider}|${placement.deviceId}|${placement.greedyInGraph ?? 'auto'}|${placement.cpuWeights ?? 'float32'}|${placement.engine ?? 'onnxruntime'}`;
}

export function chatModelResources(directory: string, placement: DevicePlacement): Promise<ChatModelResources> {
  return loadOnce(chatModels, keyOf(directory, placement), () =>
    loadChatModel(directory, {
      executionProvider: placement.executionProvider,
      deviceId: placement.deviceId,
      logger: placement.logger,
      maxBatchSize: sharedMaxBatchSize,
      greedyInGraph: placement.greedyInGraph,
      cpuWeights: placement.cpuWeights,
      engine: placement.engine,
      torchEngine: { python: placement.python, compile: placement.torchCompile },
    }).then((runtime) => ({ runtime, batcher: createMicroBatcher(runtime, { maxBatchSize: sharedMaxBatchSize }) })),
  );
}

export function embeddingModelRuntime(directory: string, placement: DevicePlacement): Promise<EmbeddingModelRuntime> {
  return loadOnce(embeddingModels, keyOf(directory, placement), () =>
    loadEmbeddingModel(directory, {
      executionProvider: placement.executionProvider,
      deviceId: placement.deviceId,
      logger: placement.logger,
    }),
  );
}

/** Drops a folder's loaded models (after its cached copy was found altered and fetched again). */
export async function forgetModelFolder(directory: string): Promise<void> {
  for (const [key, loading] of [...chatModels]) {
    if (!key.startsWith(`${directory}|`)) continue;
    chatModels.delete(key);
    await (await loading.catch(() => undefined))?.batcher.close();
  }
  for (const key of [...embeddingModels.keys()]) if (key.startsWith(`${directory}|`)) embeddingModels.delete(key);
}

/** Finishes queued generations and forgets every loaded model (worker shutdown, tests). */
export async function closeRagInferenceResources(): Promise<void> {
  const loaded = [...chatModels.values()];
  chatModels.clear();
  embeddingModels.clear();
  for (const loading of loaded) {
    const resources = await loading.catch(() => undefined);
    await resources?.batcher.close();
  }
  await closeTorchDecodeEngines();
}
