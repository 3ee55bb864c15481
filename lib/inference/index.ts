/**
 * weft's inference layer: Hugging Face tokenizers and chat templates, KV-cached batched generation and sentence
 * embeddings on onnxruntime-node, and a micro-batcher for the gpu worker's predict activity.
 */
export { loadChatModel, ChatModelRuntime, greedyInt8LoopFileName } from './chat-model';
export type {
  AdmittedRequest,
  ChatModelOptions,
  FinishReason,
  GenerationOptions,
  GenerationParameters,
  GenerationRequest,
  GenerationResult,
  GenerationTimings,
  GreedyInGraph,
  CpuWeights,
  TokenEvent,
} from './chat-model';
export { ChatTemplate } from './chat-template';
export type { ChatMessage } from './chat-template';
export { loadEmbeddingModel, EmbeddingModelRuntime } from './embedding-model';
export type { EmbeddingModelOptions } from './embedding-model';
export { createMicroBatcher, MicroBatcherClosedError } from './micro-batcher';
export type { ContinuousGenerator, MicroBatcher, MicroBatcherOptions } from './micro-batcher';
export { releaseAllSessions } from './onnx-session';
export type { ExecutionProvider, InferenceLogger, SessionOptions } from './onnx-session';
export type { CausalLanguageModelDescription, EmbeddingModelDescription } from './model-description';
export { Tokenizer } from './tokenizer/tokenizer';
export type { DecodeOptions, EncodeOptions, Encoding } from './tokenizer/tokenizer';
export * from './errors';
export { ragMessages, ragSystemPrompt } from './rag-prompt';
export { closeTorchDecodeEngines } from './torch-engine';
export type { DecodeEngineName, EngineReady } from './torch-engine';
export { checkCudaProvider, cudaProviderLibraries } from './cuda-check';
export type { CudaProviderReport } from './cuda-check';
