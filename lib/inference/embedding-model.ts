import path from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  DimensionMismatchError,
  EmptyPromptError,
  InferenceRunError,
  maxCharactersPerToken,
  ModelSignatureMismatchError,
} from './errors';
import { type EmbeddingModelDescription, readEmbeddingModelDescription, requireModelFolder } from './model-description';
import { type ExecutionProvider, type SessionOptions, loadSession } from './onnx-session';
import { Tokenizer } from './tokenizer/tokenizer';

export interface EmbeddingModelOptions extends SessionOptions {
  /** Texts per forward pass. Default 32. */
  batchSize?: number;
}

const requiredInputs = ['input_ids', 'attention_mask'];
const optionalInputs = ['token_type_ids'];
const outputName = 'last_hidden_state';

/**
 * A sentence-embedding model (BERT-style encoder exported to ONNX): mean pooling over the attention mask, then L2
 * normalisation, as sentence-transformers does for all-MiniLM-L6-v2.
 */
export class EmbeddingModelRuntime {
  private readonly feedsTokenTypeIds: boolean;
  private readonly batchSize: number;

  constructor(
    private readonly session: ort.InferenceSession,
    readonly tokenizer: Tokenizer,
    readonly description: EmbeddingModelDescription,
    readonly modelPath: string,
    /** sha256 of model.onnx. */
    readonly digest: string,
    readonly executionProvider: ExecutionProvider,
    options: EmbeddingModelOptions = {},
  ) {
    const inputNames = session.inputNames;
    const unexpected = inputNames.filter((name) => !requiredInputs.includes(name) && !optionalInputs.includes(name));
    if (requiredInputs.some((name) => !inputNames.includes(name)) || unexpected.length > 0) {
      throw new ModelSignatureMismatchError(modelPath, 'inputs', [...requiredInputs, ...optionalInputs], inputNames);
    }
    if (!session.outputNames.includes(outputName)) {
      throw new ModelSignatureMismatchError(modelPath, 'outputs', [outputName], session.outputNames);
    }
    this.feedsTokenTypeIds = inputNames.includes('token_type_ids');
    this.batchSize = options.batchSize ?? 32;
  }

  get dimension(): number {
    return this.description.dimension;
  }

  /** One unit-length vector per text, in the order given. */
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const encodings = texts.map((text, index) => {
      if (text.trim().length === 0) throw new EmptyPromptError(index);
      // Tokens past maxLength are cut anyway; the text is cut first so a megabyte is never tokenised whole.
      const maxCharacters = this.description.maxLength * maxCharactersPerToken;
      const kept = text.length > maxCharacters ? text.slice(0, maxCharacters).replace(/[\uD800-\uDBFF]$/, '') : text;
      return this.tokenizer.encodeWithTypes(kept, { maxLength: this.description.maxLength });
    });
    // Batching texts of similar length wastes less compute on padding; results go back to the caller's order.
    const order = encodings
      .map((_, index) => index)
      .sort((left, right) => encodings[left].ids.length - encodings[right].ids.length);
    const vectors = new Array<Float32Array>(texts.length);
    for (let start = 0; start < order.length; start += this.batchSize) {
      const batchIndices = order.slice(start, start + this.batchSize);
      const batchVectors = await this.embedBatch(batchIndices.map((index) => encodings[index]));
      batchIndices.forEach((index, position) => (vectors[index] = batchVectors[position]));
    }
    return vectors;
  }

  private async embedBatch(encodings: Array<{ ids: number[]; typeIds: number[] }>): Promise<Float32Array[]> {
    const batch = encodings.length;
    const length = Math.max(...encodings.map((encoding) => encoding.ids.length));
    const inputIds = new BigInt64Array(batch * length);
    const attentionMask = new BigInt64Array(batch * length);
    const tokenTypeIds = new BigInt64Array(batch * length);
    encodings.forEach((encoding, row) => {
      encoding.ids.forEach((id, column) => {
        inputIds[row * length + column] = BigInt(id);
        attentionMask[row * length + column] = 1n;
        tokenTypeIds[row * length + column] = BigInt(encoding.typeIds[column]);
      });
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', inputIds, [batch, length]),
      attention_mask: new ort.Tensor('int64', attentionMask, [batch, length]),
    };
    if (this.feedsTokenTypeIds) feeds.token_type_ids = new ort.Tensor('int64', tokenTypeIds, [batch, length]);
    let hidden: ort.Tensor;
    try {
      hidden = (await this.session.run(feeds))[outputName] as ort.Tensor;
    } catch (error) {
      throw new InferenceRunError(this.modelPath, error);
    }
    const dimension = hidden.dims[2];
    if (dimension !== this.description.dimension) {
      throw new DimensionMismatchError(`${this.modelPath} embedding dimension`, this.description.dimension, dimension);
    }
    const states = hidden.data as Float32Array;
    return encodings.map((encoding, row) => {
      const vector = new Float32Array(dimension);
      const tokens = encoding.ids.length;
      for (let column = 0; column < tokens; column++) {
        const offset = (row * length + column) * dimension;
        for (let index = 0; index < dimension; index++) vector[index] += states[offset + index];
      }
      let norm = 0;
      for (let index = 0; index < dimension; index++) {
        vector[index] /= tokens;
        norm += vector[index] * vector[index];
      }
      if (this.description.normalize) {
        // sentence-transformers' Normalize divides by max(norm, 1e-12).
        const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
        for (let index = 0; index < dimension; index++) vector[index] *= scale;
      }
      return vector;
    });
  }
}

/** Loads an embedding model folder (model.onnx, tokenizer.json, weft-model.json); sessions are shared per process. */
export async function loadEmbeddingModel(
  folder: string,
  options: EmbeddingModelOptions = {},
): Promise<EmbeddingModelRuntime> {
  requireModelFolder(folder, 'Embedding model');
  const description = readEmbeddingModelDescription(folder);
  const tokenizer = Tokenizer.fromFolder(folder);
  const loaded = await loadSession(path.join(folder, 'model.onnx'), 'Embedding model file model.onnx', options);
  return new EmbeddingModelRuntime(
    loaded.session,
    tokenizer,
    description,
    loaded.modelPath,
    loaded.digest,
    loaded.executionProvider,
    options,
  );
}
