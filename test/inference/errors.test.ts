/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ContextLengthExceededError,
  CorruptModelError,
  DimensionMismatchError,
  EmptyPromptError,
  InvalidGenerationOptionsError,
  ModelFileNotFoundError,
  ModelSignatureMismatchError,
  UnsupportedTokenizerError,
  loadChatModel,
  loadEmbeddingModel,
} from '../../lib/inference';
import { chatModelDirectory, embeddingModelDirectory, requireBuiltModels } from './built-models';

describe('inference errors a user can act on', () => {
  let scratch: string;

  beforeAll(() => {
    requireBuiltModels();
    scratch = mkdtempSync(path.join(os.tmpdir(), 'weft-inference-errors-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** A copy of the chat model folder with model.onnx linked from `modelFile` and files edited by `edit`. */
  function chatFolder(name: string, modelFile: string | undefined, edit: (folder: string) => void = () => {}): string {
    const folder = path.join(scratch, name);
    for (const file of readdirSync(chatModelDirectory)) {
      if (file !== 'model.onnx') cpSync(path.join(chatModelDirectory, file), path.join(folder, file));
    }
    if (modelFile) symlinkSync(modelFile, path.join(folder, 'model.onnx'));
    edit(folder);
    return folder;
  }

  function editJson(file: string, change: (value: Record<string, unknown>) => void): void {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    change(value);
    writeFileSync(file, JSON.stringify(value));
  }

  it('a missing model folder names the folder and how to build it, and is not retryable', async () => {
    const missing = path.join(scratch, 'no-such-model');
    const failure = loadChatModel(missing);
    await expect(failure).rejects.toBeInstanceOf(ModelFileNotFoundError);
    await expect(failure).rejects.toThrow(`Chat model folder not found at ${missing}`);
    await expect(failure).rejects.toThrow('bash scripts/setup.sh');
    await expect(failure).rejects.toMatchObject({ retryable: false, type: 'ModelFileNotFoundError' });
    await expect(loadEmbeddingModel(missing)).rejects.toThrow('Embedding model folder not found');
  });

  it('a folder without model.onnx names that file', async () => {
    const folder = chatFolder('no-onnx', undefined);
    await expect(loadChatModel(folder)).rejects.toThrow(
      `Chat model file model.onnx not found at ${path.join(folder, 'model.onnx')}`,
    );
  });

  it('a corrupt ONNX file is reported as corrupt, not retried', async () => {
    const folder = chatFolder('corrupt', undefined, (target) =>
      writeFileSync(path.join(target, 'model.onnx'), 'this is not a protobuf'),
    );
    const failure = loadChatModel(folder);
    await expect(failure).rejects.toBeInstanceOf(CorruptModelError);
    await expect(failure).rejects.toMatchObject({ retryable: false });
  });

  it('an ONNX graph with other inputs lists the expected and the found names', async () => {
    const folder = chatFolder('wrong-inputs', path.join(embeddingModelDirectory, 'model.onnx'));
    const failure = loadChatModel(folder);
    await expect(failure).rejects.toBeInstanceOf(ModelSignatureMismatchError);
    await expect(failure).rejects.toThrow(/expected \[input_ids, attention_mask, past_key_values\.0\.key, /);
    await expect(failure).rejects.toThrow(/found \[.*token_type_ids.*\]/);
  });

  it('a model description that disagrees with the graph is a dimension mismatch', async () => {
    const folder = chatFolder('wrong-vocabulary', path.join(chatModelDirectory, 'model.onnx'), (target) =>
      editJson(path.join(target, 'weft-model.json'), (value) => (value.vocab_size = (value.vocab_size as number) + 7)),
    );
    // Caught at load, from the graph's fixed output shape: the in-graph decoder would never see the logits.
    const failure = loadChatModel(folder);
    await expect(failure).rejects.toBeInstanceOf(DimensionMismatchError);
    await expect(failure).rejects.toThrow(/vocabulary size/);

    const embeddingFolder = path.join(scratch, 'wrong-dimension');
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'weft-model.json']) {
      cpSync(path.join(embeddingModelDirectory, file), path.join(embeddingFolder, file));
    }
    symlinkSync(path.join(embeddingModelDirectory, 'model.onnx'), path.join(embeddingFolder, 'model.onnx'));
    editJson(path.join(embeddingFolder, 'weft-model.json'), (value) => (value.dimension = 512));
    const embedder = await loadEmbeddingModel(embeddingFolder);
    await expect(embedder.embed(['methane'])).rejects.toThrow('embedding dimension: expected 512, got 384');
  });

  it('a tokenizer.json with an unknown model type is refused at load', async () => {
    const folder = chatFolder('unigram', path.join(chatModelDirectory, 'model.onnx'), (target) =>
      editJson(path.join(target, 'tokenizer.json'), (value) => ((value.model as { type: string }).type = 'Unigram')),
    );
    await expect(loadChatModel(folder)).rejects.toBeInstanceOf(UnsupportedTokenizerError);
  });

  it('empty prompts, oversized requests and invalid parameters fail before any compute', async () => {
    const model = await loadChatModel(chatModelDirectory);
    await expect(model.generate({ messages: [] })).rejects.toBeInstanceOf(EmptyPromptError);
    await expect(model.generate([{ prompt: 'ok' }, { prompt: '' }])).rejects.toThrow('Request 1 has an empty prompt');
    await expect(model.generate({ prompt: 'ok', maxNewTokens: 1_000_000 })).rejects.toBeInstanceOf(
      ContextLengthExceededError,
    );
    await expect(model.generate({ prompt: 'ok', temperature: -1 })).rejects.toBeInstanceOf(
      InvalidGenerationOptionsError,
    );
    await expect(model.generate({ prompt: 'ok', topP: 0 })).rejects.toThrow('topP must be in (0, 1]');
    const embedder = await loadEmbeddingModel(embeddingModelDirectory);
    await expect(embedder.embed(['fine', '  '])).rejects.toThrow('Request 1 has an empty prompt');
  });

  it('asking for CUDA where it cannot load warns through the injected logger and runs on CPU', async () => {
    const warnings: string[] = [];
    const logger = { warn: (message: string) => warnings.push(message) };
    const model = await loadEmbeddingModel(embeddingModelDirectory, { executionProvider: 'cuda', deviceId: 0, logger });
    if (model.executionProvider === 'cpu') {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/CUDA execution provider could not load .* running on CPU instead/);
    } else {
      expect(warnings).toEqual([]);
    }
    const [vector] = await model.embed(['methane']);
    expect(vector).toHaveLength(384);
  });
});
