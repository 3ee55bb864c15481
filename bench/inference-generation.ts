/**
 * weft's onnxruntime-node inference against transformers / sentence-transformers on PyTorch, in the same run on
 * the same models and prompts:
 *
 *   npx tsx bench/inference-generation.ts [--repeat 3] [--prompts 8] [--max-new-tokens 64] [--threads N]
 *       [--chat-model DIR] [--hf-model DIR] [--embedding-model DIR] [--texts 256]
 *       [--lengths fixed|natural] [--greedy-in-graph auto|always|never] [--cpu-weights float32|int8]
 *
 * Default chat model: SmolLM2-135M-Instruct as setup builds it (smollm2/onnx and smollm2/hf); --texts 0 skips
 * the embedding comparison.
 *
 * Prints greedy tokens/s at batch 1 and batch 8 (weft and PyTorch), weft's batched/unbatched throughput ratio,
 * and embedding sentences/s. With --lengths fixed (default) every completion is exactly --max-new-tokens long (stop
 * tokens suppressed until then, min_new_tokens on the PyTorch side), so both sides do the same work whatever the
 * model says; weft then decodes with its host loop (the in-graph decoder has no forced minimum). With --lengths
 * natural both sides stop at the model's stop token, as the RAG app's requests do, so weft's in-graph decoder
 * (generate_greedy.onnx) serves the rows when the chat model uses it (--greedy-in-graph, default the runtime's), with its 8-bit weights under --cpu-weights int8 (WEFT_CPU_WEIGHTS). Goals: weft ≥ 1.5× PyTorch at batch 1, batched ≥ 3× unbatched at batch 8.
 * Both sides use the same thread count and report the fastest of --repeat runs; an idle machine still helps.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { projectRoot } from '../lib/config/config';
import {
  type ChatMessage,
  type GenerationResult,
  loadChatModel,
  loadEmbeddingModel,
  ragMessages,
  releaseAllSessions,
} from '../lib/inference';

interface BenchOptions {
  /** Each measurement runs this many times and the fastest counts: other processes on the host only slow runs down. */
  repeat: number;
  prompts: number;
  maxNewTokens: number;
  threads: number;
  texts: number;
  chatModel: string;
  hfModel: string;
  embeddingModel: string;
  lengths: 'fixed' | 'natural';
  greedyInGraph: 'auto' | 'always' | 'never';
  cpuWeights: 'float32' | 'int8';
}

interface PyTorchTimings {
  unbatched: { tokens: number; seconds: number; outputs: number[][] };
  batched: { tokens: number; seconds: number };
  embeddings: { sentences: number; seconds: number };
}

const modelsDirectory = path.resolve(
  process.env.WEFT_MODELS_DIR ?? path.join(process.env.WEFT_HOME ?? path.join(projectRoot, '.weft'), 'models'),
);

function parseOptions(argv: readonly string[]): BenchOptions {
  const options: BenchOptions = {
    repeat: 3,
    prompts: 8,
    maxNewTokens: 64,
    threads: Math.min(8, os.availableParallelism()),
    texts: 256,
    chatModel: path.join(modelsDirectory, 'smollm2', 'onnx'),
    hfModel: path.join(modelsDirectory, 'smollm2', 'hf'),
    embeddingModel: path.join(modelsDirectory, 'minilm', 'onnx'),
    lengths: 'fixed',
    greedyInGraph: 'auto',
    cpuWeights: 'float32',
  };
  for (let index = 0; index < argv.length; index += 2) {
    const value = argv[index + 1];
    switch (argv[index]) {
      case '--repeat':
        options.repeat = Number(value);
        break;
      case '--prompts':
        options.prompts = Number(value);
        break;
      case '--max-new-tokens':
        options.maxNewTokens = Number(value);
        break;
      case '--threads':
        options.threads = Number(value);
        break;
      case '--texts':
        options.texts = Number(value);
        break;
      case '--chat-model':
        options.chatModel = path.resolve(value);
        break;
      case '--hf-model':
        options.hfModel = path.resolve(value);
        break;
      case '--embedding-model':
        options.embeddingModel = path.resolve(value);
        break;
      case '--lengths':
        if (value !== 'fixed' && value !== 'natural') throw new Error('--lengths takes fixed or natural.');
        options.lengths = value;
        break;
      case '--greedy-in-graph':
        if (value !== 'auto' && value !== 'always' && value !== 'never') {
          throw new Error('--greedy-in-graph takes auto, always or never.');
        }
        options.greedyInGraph = value;
        break;
      case '--cpu-weights':
        if (value !== 'float32' && value !== 'int8') throw new Error('--cpu-weights takes float32 or int8.');
        options.cpuWeights = value;
        break;
      default:
        throw new Error(
          `Unknown option ${argv[index]}; use --repeat, --prompts, --max-new-tokens, --threads, --texts, --chat-model, ` +
            '--hf-model, --embedding-model, --lengths, --greedy-in-graph or --cpu-weights.',
        );
    }
  }
  return options;
}

function readJsonLines<T>(file: string): T[] {
  return readFileSync(path.join(projectRoot, 'data', 'climate', file), 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as T);
}

/** The evaluation set's questions alone: short prompts, where the per-row cache work is small. */
function questionPrompts(count: number): ChatMessage[][] {
  return readJsonLines<{ question: string }>('qa-eval.jsonl')
    .slice(0, count)
    .map((row) => [{ role: 'user', content: row.question }]);
}

/** RAG prompts of the evaluation set: each question with its source document as the context. */
function benchPrompts(count: number): ChatMessage[][] {
  const documents = new Map(
    readJsonLines<{ id: string; text: string }>('corpus.jsonl').map((document) => [document.id, document.text]),
  );
  return readJsonLines<{ question: string; doc_id: string }>('qa-eval.jsonl')
    .slice(0, count)
    .map((row) => ragMessages(row.question, [documents.get(row.doc_id) ?? '']));
}

function benchTexts(count: number): string[] {
  const sentences = readJsonLines<{ text: string }>('corpus.jsonl').flatMap((document) =>
    document.text.split(/(?<=[.!?])\s+/),
  );
  return Array.from({ length: count }, (_, index) => sentences[index % sentences.length]);
}

/** The PyTorch side, run by the project's Python: same prompts, greedy, same thread count. */
const pytorchScript = String.raw`
import json, sys, time
import torch
request = json.load(sys.stdin)
torch.set_num_threads(request["threads"])
from transformers import AutoModelForCausalLM, AutoTokenizer
from sentence_transformers import SentenceTransformer
sys.path.insert(0, request["project_root"])
from trainer.embedding_model import minilm_source_dir

tokenizer = AutoTokenizer.from_pretrained(request["hf_model"])
model = AutoModelForCausalLM.from_pretrained(request["hf_model"], dtype=torch.float32).eval()
prompts = [tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) for messages in request["prompts"]]
prompt_ids = [tokenizer.encode(prompt, add_special_tokens=False) for prompt in prompts]
stop_ids = set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list) else [model.generation_config.eos_token_id])
max_new = request["max_new_tokens"]
min_new = max_new if request["fixed_lengths"] else 0

def useful(tokens):
    for index, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[: index + 1]
    return tokens

def generate(batch):
    width = max(len(ids) for ids in batch)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch])
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
    with torch.no_grad():
        output = model.generate(input_ids, attention_mask=mask, max_new_tokens=max_new, min_new_tokens=min_new, do_sample=False)
    return [useful(row[width:].tolist()) for row in output]

def fastest(work):
    best, value = float("inf"), None
    for _ in range(request["repeat"]):
        started = time.perf_counter()
        value = work()
        best = min(best, time.perf_counter() - started)
    return best, value

generate(prompt_ids[:1])
seconds, outputs = fastest(lambda: [generate([ids])[0] for ids in prompt_ids])
unbatched = {"tokens": sum(len(tokens) for tokens in outputs), "seconds": seconds, "outputs": outputs}
seconds, batched_outputs = fastest(lambda: generate(prompt_ids))
batched = {"tokens": sum(len(tokens) for tokens in batched_outputs), "seconds": seconds}

texts = request["texts"]
embeddings = {"sentences": 0, "seconds": 0}
if texts:
    embedder = SentenceTransformer(str(minilm_source_dir()), device="cpu")
    embedder.encode(texts[:32], batch_size=32)
    seconds, _ = fastest(lambda: embedder.encode(texts, batch_size=32, normalize_embeddings=True))
    embeddings = {"sentences": len(texts), "seconds": seconds}
json.dump({"unbatched": unbatched, "batched": batched, "embeddings": embeddings}, sys.stdout)
`;

function runPyTorch(options: BenchOptions, prompts: ChatMessage[][], texts: string[]): PyTorchTimings {
  const python = process.env.WEFT_PYTHON ?? path.join(projectRoot, '.venv', 'bin', 'python');
  const run = spawnSync(python, ['-c', pytorchScript], {
    input: JSON.stringify({
      hf_model: options.hfModel,
      project_root: projectRoot,
      prompts,
      texts,
      threads: options.threads,
      max_new_tokens: options.maxNewTokens,
      fixed_lengths: options.lengths === 'fixed',
      repeat: options.repeat,
    }),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`PyTorch side failed (run bash scripts/setup.sh?):\n${run.stderr}`);
  return JSON.parse(run.stdout) as PyTorchTimings;
}

/** Runs `work` `repeat` times; the fastest run counts (contention from other processes only adds time). */
async function fastest<T>(repeat: number, work: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  let best = Infinity;
  let value: T | undefined;
  for (let attempt = 0; attempt < repeat; attempt++) {
    const started = performance.now();
    value = await work();
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return { seconds: best, value: value as T };
}

function sum(results: GenerationResult[], pick: (result: GenerationResult) => number): number {
  return results.reduce((total, result) => total + pick(result), 0);
}

function tokensOf(results: GenerationResult[]): number {
  return sum(results, (result) => result.completionTokens);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const prompts = benchPrompts(options.prompts);
  const texts = benchTexts(options.texts);
  const sessionOptions = { intraOpThreads: options.threads };

  const chat = await loadChatModel(options.chatModel, {
    ...sessionOptions,
    maxBatchSize: options.prompts,
    greedyInGraph: options.greedyInGraph,
    cpuWeights: options.cpuWeights,
  });
  const minNewTokens = options.lengths === 'fixed' ? options.maxNewTokens : 0;
  const requests = prompts.map((messages) => ({ messages, maxNewTokens: options.maxNewTokens, minNewTokens }));
  await chat.generate(requests[0]);
  const unbatchedRun = await fastest(options.repeat, async () => {
    const results: GenerationResult[] = [];
    for (const request of requests) results.push(await chat.generate(request));
    return results;
  });
  const unbatched = unbatchedRun.value;
  const weftUnbatchedSeconds = unbatchedRun.seconds;
  const batchedRun = await fastest(options.repeat, () => chat.generate(requests));
  const batched = batchedRun.value;
  const weftBatchedSeconds = batchedRun.seconds;

  // The same comparison on short prompts shows how much of the batching gain the long RAG contexts cost.
  const shortRequests = questionPrompts(options.prompts).map((messages) => ({
    messages,
    maxNewTokens: options.maxNewTokens,
    minNewTokens,
  }));
  const shortUnbatched = await fastest(options.repeat, async () => {
    for (const request of shortRequests) await chat.generate(request);
  });
  const shortBatchedRun = await fastest(options.repeat, () => chat.generate(shortRequests));
  const shortBatched = shortBatchedRun.value;
  const shortUnbatchedMs = shortUnbatched.seconds * 1000;
  const shortBatchedMs = shortBatchedRun.seconds * 1000;

  let weftEmbeddingSeconds = NaN;
  if (texts.length > 0) {
    const embedder = await loadEmbeddingModel(options.embeddingModel, sessionOptions);
    await embedder.embed(texts.slice(0, 32));
    weftEmbeddingSeconds = (await fastest(options.repeat, () => embedder.embed(texts))).seconds;
  }
  await releaseAllSessions();

  const pytorch = runPyTorch(options, prompts, texts);
  const identical = unbatched.filter(
    (result, index) => JSON.stringify(result.tokenIds) === JSON.stringify(pytorch.unbatched.outputs[index]),
  ).length;
  const batchedMatches = batched.filter(
    (result, index) => JSON.stringify(result.tokenIds) === JSON.stringify(unbatched[index].tokenIds),
  ).length;

  const weftUnbatchedRate = tokensOf(unbatched) / weftUnbatchedSeconds;
  const weftBatchedRate = tokensOf(batched) / weftBatchedSeconds;
  const pytorchUnbatchedRate = pytorch.unbatched.tokens / pytorch.unbatched.seconds;
  const pytorchBatchedRate = pytorch.batched.tokens / pytorch.batched.seconds;
  const weftEmbeddingRate = texts.length / weftEmbeddingSeconds;
  const pytorchEmbeddingRate = pytorch.embeddings.sentences / pytorch.embeddings.seconds;
  const format = (value: number): string => value.toFixed(1).padStart(9);
  console.log(
    `${prompts.length} RAG prompts, up to ${options.maxNewTokens} new tokens, ${options.threads} threads, ` +
      `${texts.length} embedding texts (${chat.executionProvider}; ${options.lengths} lengths, ` +
      `${options.lengths === 'natural' && chat.decodesInGraph ? `in-graph decoder, ${chat.greedyWeights} weights` : 'host loop'}; ` +
      'PyTorch float32)',
  );
  console.log('                              weft    PyTorch   weft/PyTorch');
  console.log(
    `greedy tokens/s, batch 1 ${format(weftUnbatchedRate)}  ${format(pytorchUnbatchedRate)}  ` +
      `${(weftUnbatchedRate / pytorchUnbatchedRate).toFixed(2)}x (goal ≥ 1.5x)`,
  );
  console.log(
    `greedy tokens/s, batch ${prompts.length} ${format(weftBatchedRate)}  ${format(pytorchBatchedRate)}  ` +
      `${(weftBatchedRate / pytorchBatchedRate).toFixed(2)}x`,
  );
  if (texts.length > 0) {
    console.log(
      `embeddings sentences/s   ${format(weftEmbeddingRate)}  ${format(pytorchEmbeddingRate)}  ` +
        `${(weftEmbeddingRate / pytorchEmbeddingRate).toFixed(2)}x`,
    );
  }
  console.log(
    `weft batched / unbatched throughput at batch ${prompts.length}, question-only prompts ` +
      `(~${Math.round(sum(shortBatched, (result) => result.promptTokens) / shortBatched.length)} tokens): ` +
      `${(shortUnbatchedMs / shortBatchedMs).toFixed(2)}x`,
  );
  console.log(
    `weft batched / unbatched throughput at batch ${prompts.length}, RAG prompts ` +
      `(~${Math.round(sum(batched, (result) => result.promptTokens) / batched.length)} tokens): ` +
      `${(weftBatchedRate / weftUnbatchedRate).toFixed(2)}x (goal ≥ 3x)`,
  );
  const inGraph = options.lengths === 'natural' && chat.decodesInGraph;
  if (inGraph) {
    // One session run per batch: the in-graph decoder reports no prefill/decode split, so no decode-only figures.
    console.log('weft time split and decode-only tokens/s: not reported by the in-graph decoder');
  }
  const batchedPrefillMs = sum(batched, (result) => result.timings.prefillMs);
  if (!inGraph)
    console.log(
      `weft time split: unbatched prefill ${sum(unbatched, (result) => result.timings.prefillMs).toFixed(0)} ms + ` +
        `decode ${sum(unbatched, (result) => result.timings.decodeMs).toFixed(0)} ms; batched prefill ` +
        `${batchedPrefillMs.toFixed(0)} ms + decode ${(weftBatchedSeconds * 1000 - batchedPrefillMs).toFixed(0)} ms`,
    );
  // Decode alone (every token after a row's first, which its prefill produces): prefill does the same work batched or
  // not (rows are prefilled one by one), so this is where batching can pay.
  const unbatchedDecodeMs = sum(unbatched, (result) => result.timings.decodeMs);
  const decodeTokens = (results: GenerationResult[]): number => sum(results, (result) => result.completionTokens - 1);
  const unbatchedDecodeRate = decodeTokens(unbatched) / (unbatchedDecodeMs / 1000);
  const batchedDecodeRate = decodeTokens(batched) / ((weftBatchedSeconds * 1000 - batchedPrefillMs) / 1000);
  if (!inGraph)
    console.log(
      `weft decode-only tokens/s (after each row's first token): batch 1 ${unbatchedDecodeRate.toFixed(1)}, ` +
        `batch ${prompts.length} ${batchedDecodeRate.toFixed(1)}: ${(batchedDecodeRate / unbatchedDecodeRate).toFixed(2)}x`,
    );
  console.log(
    `greedy parity: ${identical}/${prompts.length} completions identical to PyTorch, ` +
      `${batchedMatches}/${prompts.length} batched identical to unbatched`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
