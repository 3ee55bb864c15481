/**
 * The RAG app as versioned objects (ChatModel, Prompt, RagModel, Evaluation) and what RagModel.predict means:
 * batched retrieval over a vector collection alias, then batched generation with the app's chat model. Also
 * corpus ingestion (blue/green collections) and the demo project's bootstrap.
 */
export {
  appObjectNames,
  defaultRagPrompt,
  renderPrompt,
  chatModelValue,
  promptValue,
  ragModelValue,
  evaluationValue,
  parseChatModel,
  parsePrompt,
  parseRagModel,
  parseEvaluation,
} from './app-objects';
export type {
  ChatModel,
  ChatModelDevice,
  DisplayOptions,
  Evaluation,
  GenerationSettings,
  Prompt,
  RagModel,
  RetrievalSettings,
} from './app-objects';
export { createRagRuntime } from './rag-runtime';
export type {
  ChatModelInput,
  EvaluationInput,
  IngestInput,
  IngestResult,
  PredictOptions,
  Prediction,
  RagModelInput,
  RagRuntime,
  RagRuntimeOptions,
  ResolvedRagModel,
  RetrievedContext,
} from './rag-runtime';
export { chunkDocument, defaultChunking, readCorpus } from './corpus';
export type { ChunkingSettings, CorpusDocument, Passage } from './corpus';
export {
  bootstrapDemoProject,
  demoBaseModels,
  demoModelFolders,
  demoNames,
  logBaseChatModel,
  logBaseModelFolder,
  logEmbeddingModel,
  requireDemoModels,
} from './demo-project';
export type { DemoBaseModel, DemoProject, DemoProjectOptions } from './demo-project';
export { selectRagModel } from './rag-model-selector';
export {
  aliasVersion,
  chatModelCollectionRef,
  linkedVersionOfRagModel,
  productionRagModelRef,
  ragModelCollectionName,
  ragModelCollectionRef,
  ragModelRefOfArtifact,
  registryAliases,
  registryArtifactTypes,
  registryCollectionRef,
  registryNames,
} from './registries';
export type { SelectedRagModel, SelectorScope } from './rag-model-selector';
export { closeRagInferenceResources } from './inference-resources';
export * from './errors';
