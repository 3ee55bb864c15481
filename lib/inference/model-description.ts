import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CorruptModelError, ModelFileNotFoundError } from './errors';
import { readJsonFile } from './tokenizer/tokenizer';

/** What the generation loop needs to know about a causal LM export. */
export interface CausalLanguageModelDescription {
  numLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDimension: number;
  hiddenSize: number;
  vocabularySize: number;
  bosTokenId: number | undefined;
  /** Token ids that end a completion (model config and generation_config.json together). */
  eosTokenIds: number[];
  /** Id written into left padding; never attended to. */
  padTokenId: number;
  maxPositions: number;
  /** Default max_new_tokens from generation_config.json, when it sets one. */
  defaultMaxNewTokens: number | undefined;
}

export interface EmbeddingModelDescription {
  dimension: number;
  pooling: 'mean';
  normalize: boolean;
  maxLength: number;
}

const tokenIds = z.union([z.number().int(), z.array(z.number().int())]).nullish();

const weftCausalSchema = z.object({
  format: z.literal('weft-onnx-causal-lm/1'),
  num_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_kv_heads: z.number().int().positive(),
  head_dim: z.number().int().positive(),
  hidden_size: z.number().int().positive(),
  vocab_size: z.number().int().positive(),
  bos_token_id: z.number().int().nullish(),
  eos_token_ids: z.array(z.number().int()).min(1),
  pad_token_id: z.number().int().nullish(),
  dtype: z.enum(['float32', 'float16']).default('float32'),
  max_positions: z.number().int().positive(),
});

const huggingFaceConfigSchema = z.object({
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive().nullish(),
  head_dim: z.number().int().positive().nullish(),
  hidden_size: z.number().int().positive(),
  vocab_size: z.number().int().positive(),
  bos_token_id: z.number().int().nullish(),
  eos_token_id: tokenIds,
  pad_token_id: z.number().int().nullish(),
  max_position_embeddings: z.number().int().positive(),
});

const generationConfigSchema = z.object({
  eos_token_id: tokenIds,
  pad_token_id: z.number().int().nullish(),
  max_new_tokens: z.number().int().positive().nullish(),
});

const weftEmbeddingSchema = z.object({
  format: z.literal('weft-onnx-embedding/1'),
  dimension: z.number().int().positive(),
  pooling: z.literal('mean').default('mean'),
  normalize: z.boolean().default(true),
  max_length: z.number().int().positive().default(256),
});

function asList(ids: number | number[] | null | undefined): number[] {
  if (ids === null || ids === undefined) return [];
  return Array.isArray(ids) ? ids : [ids];
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, filePath: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new CorruptModelError(filePath, `unexpected content (${problems})`);
  }
  return parsed.data;
}

/** Fails with the build hint when the folder itself is absent, before any file inside is looked for. */
export function requireModelFolder(folder: string, what: string): void {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new ModelFileNotFoundError(folder, `${what} folder`);
  }
}

/** Reads weft-model.json, or derives the same fields from config.json for an Optimum export without one. */
export function readCausalLanguageModelDescription(folder: string): CausalLanguageModelDescription {
  const generationPath = path.join(folder, 'generation_config.json');
  const generation = existsSync(generationPath)
    ? parseWith(generationConfigSchema, readJsonFile(generationPath, 'generation_config.json'), generationPath)
    : undefined;
  const generationEos = asList(generation?.eos_token_id);
  const weftPath = path.join(folder, 'weft-model.json');
  let description: CausalLanguageModelDescription;
  if (existsSync(weftPath)) {
    const weft = parseWith(weftCausalSchema, readJsonFile(weftPath, 'weft-model.json'), weftPath);
    description = {
      numLayers: weft.num_layers,
      numAttentionHeads: weft.num_attention_heads,
      numKeyValueHeads: weft.num_kv_heads,
      headDimension: weft.head_dim,
      hiddenSize: weft.hidden_size,
      vocabularySize: weft.vocab_size,
      bosTokenId: weft.bos_token_id ?? undefined,
      eosTokenIds: weft.eos_token_ids,
      padTokenId: weft.pad_token_id ?? generation?.pad_token_id ?? weft.eos_token_ids[0],
      maxPositions: weft.max_positions,
      defaultMaxNewTokens: generation?.max_new_tokens ?? undefined,
    };
  } else {
    const configPath = path.join(folder, 'config.json');
    const config = parseWith(
      huggingFaceConfigSchema,
      readJsonFile(configPath, 'Model description (weft-model.json or config.json)'),
      configPath,
    );
    const eosTokenIds = asList(config.eos_token_id);
    if (eosTokenIds.length === 0 && generationEos.length === 0) {
      throw new CorruptModelError(configPath, 'neither it nor generation_config.json sets eos_token_id');
    }
    description = {
      numLayers: config.num_hidden_layers,
      numAttentionHeads: config.num_attention_heads,
      numKeyValueHeads: config.num_key_value_heads ?? config.num_attention_heads,
      headDimension: config.head_dim ?? config.hidden_size / config.num_attention_heads,
      hiddenSize: config.hidden_size,
      vocabularySize: config.vocab_size,
      bosTokenId: config.bos_token_id ?? undefined,
      eosTokenIds,
      padTokenId: config.pad_token_id ?? generation?.pad_token_id ?? eosTokenIds[0] ?? generationEos[0],
      maxPositions: config.max_position_embeddings,
      defaultMaxNewTokens: generation?.max_new_tokens ?? undefined,
    };
  }
  description.eosTokenIds = [...new Set([...description.eosTokenIds, ...generationEos])];
  return description;
}

export function readEmbeddingModelDescription(folder: string): EmbeddingModelDescription {
  const weftPath = path.join(folder, 'weft-model.json');
  const weft = parseWith(
    weftEmbeddingSchema,
    readJsonFile(weftPath, 'Embedding model description weft-model.json'),
    weftPath,
  );
  return { dimension: weft.dimension, pooling: weft.pooling, normalize: weft.normalize, maxLength: weft.max_length };
}
