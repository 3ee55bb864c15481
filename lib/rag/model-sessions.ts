import type { WeftConfig } from '../config/config';
import type { EmbeddingModelRuntime, InferenceLogger } from '../inference';
import type { ArtifactVersion } from '../lineage';
import type { ChatModelDevice } from './app-objects';
import {
  chatModelResources,
  embeddingModelRuntime,
  forgetModelFolder,
  type DevicePlacement,
} from './inference-resources';
import { manifestFileDigest, type ModelCache } from './model-cache';

/**
 * Model artifacts made ready to run, shared by ingest and predict: materialised through the model cache, loaded on
 * the placement the configuration asks for, and fetched again once when the cached copy does not match its artifact.
 */
export class RagModelSessions {
  constructor(
    /** The process's one model cache (modelCacheFor), shared with whatever else materialises model artifacts. */
    readonly modelCache: ModelCache,
    private readonly config: WeftConfig,
    private readonly logger: InferenceLogger | undefined,
  ) {}

  placementFor(device: ChatModelDevice): DevicePlacement {
    return {
      executionProvider: device === 'auto' ? this.config.executionProvider : device,
      deviceId: this.config.cudaDeviceId,
      logger: this.logger,
      greedyInGraph: this.config.greedyInGraph,
      cpuWeights: this.config.cpuWeights,
      engine: this.config.engine,
      python: this.config.python,
      torchCompile: this.config.torchCompile,
    };
  }

  async chatModel(artifactRef: string, placement: DevicePlacement) {
    const { directory, artifact } = await this.modelCache.materialize(artifactRef, ['model.onnx', 'tokenizer.json']);
    const resources = await chatModelResources(directory, placement);
    if (await this.replacedCorruptCopy(artifact, resources.runtime.digest, directory)) {
      const again = await this.modelCache.materialize(artifactRef);
      return chatModelResources(again.directory, placement);
    }
    return resources;
  }

  async embeddingModel(artifactRef: string, placement: DevicePlacement): Promise<EmbeddingModelRuntime> {
    const { directory, artifact } = await this.modelCache.materialize(artifactRef, [
      'model.onnx',
      'tokenizer.json',
      'weft-model.json',
    ]);
    const runtime = await embeddingModelRuntime(directory, placement);
    if (await this.replacedCorruptCopy(artifact, runtime.digest, directory)) {
      const again = await this.modelCache.materialize(artifactRef);
      return embeddingModelRuntime(again.directory, placement);
    }
    return runtime;
  }

  /** Compares the loaded weights' hash with the artifact's; a mismatching cached copy is deleted so it is fetched again. */
  private async replacedCorruptCopy(artifact: ArtifactVersion, loadedDigest: string, directory: string) {
    if (loadedDigest === manifestFileDigest(artifact, 'model.onnx')) return false;
    this.logger?.warn(`The cached copy of ${artifact.ref} in ${directory} was altered; fetching it again.`);
    await forgetModelFolder(directory);
    await this.modelCache.evict(artifact);
    return true;
  }
}
