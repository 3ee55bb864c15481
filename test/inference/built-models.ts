import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../lib/config/config';
import type { ChatMessage, GenerationResult } from '../../lib/inference';

/** Where `bash scripts/setup.sh` builds the demo models (WEFT_MODELS_DIR, else WEFT_HOME/models). */
export const modelsDirectory = path.resolve(
  process.env.WEFT_MODELS_DIR ?? path.join(process.env.WEFT_HOME ?? path.join(projectRoot, '.weft'), 'models'),
);
export const chatModelDirectory = path.join(modelsDirectory, 'base-chat', 'onnx');
/** The same weights exported in float16 (trainer/export_onnx.py --dtype float16). */
export const chatModelFloat16Directory = path.join(modelsDirectory, 'base-chat', 'onnx-fp16');
/**
 * A tiny Llama whose greedy output is fixed by construction (trainer/build_fixture_model.py): letters count up
 * 'a' → … → 'z' → ' ' → 'a', digits count down to '0' and then the stop token <|im_end|>, anything else → 'a'.
 * Generation semantics are tested on it; trained models' outputs differ from machine to machine.
 */
export const fixtureModelDirectory = path.join(modelsDirectory, 'fixture-chat', 'onnx');
export const fixtureModelFloat16Directory = path.join(modelsDirectory, 'fixture-chat', 'onnx-fp16');
export const embeddingModelDirectory = path.join(modelsDirectory, 'minilm', 'onnx');
export const referencePath = path.join(modelsDirectory, 'reference.json');
/** SmolLM2-135M-Instruct, the demo's pretrained base (trainer/build_smollm2.py), and its transformers reference. */
export const smolLm2Directory = path.join(modelsDirectory, 'smollm2');
export const smolLm2ReferencePath = path.join(smolLm2Directory, 'reference.json');
export const pythonPath = process.env.WEFT_PYTHON ?? path.join(projectRoot, '.venv', 'bin', 'python');

/** transformers / sentence-transformers outputs the parity tests compare with (trainer/reference_outputs.py). */
export interface Reference {
  format: 'weft-reference/2';
  max_new_tokens: number;
  tokenization: Array<{ text: string; ids: number[] }>;
  chat_prompts: Array<{ messages: ChatMessage[]; text: string; ids: number[] }>;
  generations: Array<{
    messages: ChatMessage[];
    prompt_ids: number[];
    output_ids: number[];
    text: string;
    /** PyTorch's top-1 minus top-2 logit at each generated step. */
    top2_gaps: number[];
  }>;
  /** Absent from a --chat-only reference (SmolLM2's). */
  embeddings: Array<{ text: string; input_ids: number[]; embedding: number[] }>;
}

/** Fails (never skips) with the setup command when any of `files` is missing. */
function requireFiles(what: string, files: string[]): void {
  const missing = files.filter((file) => !existsSync(file));
  if (missing.length > 0) {
    throw new Error(`${what} not built (missing ${missing.join(', ')}): run bash scripts/setup.sh`);
  }
}

/**
 * The demo models are a prerequisite, not an option: a missing build fails the suite (it is never skipped) and
 * says how to build them.
 */
export function requireBuiltModels(): Reference {
  const required = [
    path.join(chatModelDirectory, 'model.onnx'),
    path.join(chatModelDirectory, 'generate_greedy.onnx'),
    path.join(chatModelFloat16Directory, 'model.onnx'),
    path.join(embeddingModelDirectory, 'model.onnx'),
    referencePath,
  ];
  requireFiles('The demo models are', required);
  const reference = JSON.parse(readFileSync(referencePath, 'utf8')) as Reference;
  if (reference.format !== 'weft-reference/2') {
    throw new Error(`${referencePath} is format ${reference.format}, not weft-reference/2: run bash scripts/setup.sh`);
  }
  return reference;
}

/** The fixture model (trainer/build_fixture_model.py), float32 and float16; missing → fail with what to run. */
export function requireFixtureModel(): void {
  const required = [fixtureModelDirectory, fixtureModelFloat16Directory].map((folder) =>
    path.join(folder, 'generate_greedy.onnx'),
  );
  requireFiles('The fixture model is', required);
}

/**
 * How many leading tokens of a generation are decided beyond rounding: PyTorch's top-2 logit gap stays above
 * `tolerance` at every step up to there. Two correct implementations may part at a near-tie, never before one.
 */
export function decidedPrefixLength(generation: Reference['generations'][number], tolerance: number): number {
  const nearTie = generation.top2_gaps.findIndex((gap) => gap < tolerance);
  return nearTie < 0 ? generation.output_ids.length : nearTie;
}

/**
 * Each result's tokens equal the reference's up to its first near-tie (top-2 gap below `tolerance`), and all of
 * them where there is none; at least one token per prompt must be compared, so the check cannot pass vacuously.
 */
export function expectDecidedPrefixesOf(reference: Reference, results: GenerationResult[], tolerance: number): void {
  let compared = 0;
  let generated = 0;
  reference.generations.forEach((expected, index) => {
    const decided = decidedPrefixLength(expected, tolerance);
    expect(results[index].tokenIds.slice(0, decided)).toEqual(expected.output_ids.slice(0, decided));
    if (decided === expected.output_ids.length) {
      expect(results[index].tokenIds).toEqual(expected.output_ids);
      expect(results[index].text).toBe(expected.text);
    }
    compared += decided;
    generated += expected.output_ids.length;
  });
  // Not vacuous: at least as many decided tokens as prompts (a trained model's first tokens are rarely near-ties).
  expect(compared).toBeGreaterThanOrEqual(reference.generations.length);
  expect(compared).toBeLessThanOrEqual(generated);
}

/** The SmolLM2 build (setup's smollm2 steps) and its reference; missing files fail the suite with the setup hint. */
export function requireSmolLm2(): Reference {
  const required = [
    path.join(smolLm2Directory, 'hf', 'weft-provenance.json'),
    path.join(smolLm2Directory, 'onnx', 'model.onnx'),
    smolLm2ReferencePath,
  ];
  requireFiles('SmolLM2 is', required);
  return JSON.parse(readFileSync(smolLm2ReferencePath, 'utf8')) as Reference;
}

export function cosineSimilarity(left: ArrayLike<number>, right: ArrayLike<number>): number {
  let dot = 0;
  let leftNorm = 0;
  let rightNorm = 0;
  for (let index = 0; index < left.length; index++) {
    dot += left[index] * right[index];
    leftNorm += left[index] * left[index];
    rightNorm += right[index] * right[index];
  }
  return dot / Math.sqrt(leftNorm * rightNorm);
}

// What the fixture model generates, by construction (trainer/build_fixture_model.py): after a chat prompt (which
// ends in a newline) the alphabet, then ' ', then the alphabet again, never a stop token; after a digit a countdown
// to '0' and then the stop token <|im_end|>; when min_new_tokens masks that stop token, '0' is followed by '9'.
export const fixtureChat = { messages: [{ role: 'user' as const, content: 'Spell the alphabet.' }] };
export const fixtureCountdownFrom3 = { prompt: 'count 3' }; // '2', '1', '0', <|im_end|>

/** Greedy requests on the fixture model that exercise budgets, stop strings and stop tokens, with their outcomes. */
export const fixtureGreedyCases = {
  requests: [
    { ...fixtureChat, maxNewTokens: 24, stopStrings: ['mno'] },
    { ...fixtureCountdownFrom3, maxNewTokens: 1 },
    { ...fixtureCountdownFrom3, maxNewTokens: 4 },
    { ...fixtureCountdownFrom3, maxNewTokens: 3 },
    { prompt: 'count 8', maxNewTokens: 40 },
    { prompt: 'Sea level rises as', maxNewTokens: 7 },
  ],
  /** [text, finish reason] per request. */
  expected: [
    ['abcdefghijkl', 'stop'],
    ['2', 'length'],
    ['210', 'stop'],
    ['210', 'length'],
    ['76543210', 'stop'],
    ['tuvwxyz', 'length'],
  ],
};
