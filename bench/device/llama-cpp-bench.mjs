// llama.cpp through node-llama-cpp (its prebuilt CUDA binaries) on the prompts engines.py wrote, with engines.py's
// protocol: greedy, 128-token prompts, exactly 128 new tokens, best of two, decode tokens/s = batch x 127 /
// (t(128 new) - t(1 new)); time to first token for the 200-token prompt (median of 5); greedy tokens for the
// agreement prompts. Appends one JSON line per batch size to --out.
//
//   node bench/device/llama-cpp-bench.mjs --gguf W/llama1b/model-f16.gguf --prompts W/llama1b/prompts.json \
//       --model llama1b --quant f16 --parameters N --out W/results.jsonl [--batches 1,32] [--gpu cuda|false]
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce(
      (pairs, value, index, all) => (index % 2 === 0 ? [...pairs, [value.replace(/^--/, ''), all[index + 1]]] : pairs),
      [],
    ),
);
for (const required of ['gguf', 'prompts', 'model', 'out']) {
  if (!args[required]) throw new Error(`--${required} is required (see the header of llama-cpp-bench.mjs)`);
}
const batches = (args.batches ?? '1,32').split(',').map(Number);
const prompts = JSON.parse(readFileSync(args.prompts, 'utf8'));
const newTokens = prompts.new_tokens;
const gpu = args.gpu === 'false' ? false : (args.gpu ?? 'cuda');

const log = (event) => console.log(JSON.stringify(event));

const llama = await getLlama({ gpu, build: 'never', logLevel: LlamaLogLevel.warn });
log({ event: 'llama', gpu: llama.gpu, devices: await llama.getGpuDeviceNames().catch(() => []) });
let started = performance.now();
const model = await llama.loadModel({ modelPath: args.gguf, gpuLayers: gpu === false ? 0 : 'max' });
log({
  event: 'loaded',
  seconds: (performance.now() - started) / 1000,
  fileBytes: statSync(args.gguf).size,
  modelSize: model.size,
});

async function generate(sequences, tokenLists, count) {
  const outputs = await Promise.all(
    sequences.map(async (sequence, index) => {
      await sequence.clearHistory();
      const tokens = [];
      if (count === 0) return tokens;
      for await (const token of sequence.evaluate(tokenLists[index], { temperature: 0 })) {
        tokens.push(token);
        if (tokens.length >= count) break;
      }
      return tokens;
    }),
  );
  return outputs;
}

async function timed(fn) {
  const begin = performance.now();
  const result = await fn();
  return { seconds: (performance.now() - begin) / 1000, result };
}

const weightBytes = statSync(args.gguf).size;
for (const batch of batches) {
  const context = await model.createContext({
    sequences: batch,
    contextSize: batch * 512,
    batchSize: Math.max(512, batch * prompts.speed[0].length),
    flashAttention: args.flash === 'false' ? false : true,
    ...(args.threads ? { threads: Number(args.threads) } : {}),
  });
  log({ event: 'context', batch, contextSize: context.contextSize, flashAttention: context.flashAttention });
  const sequences = Array.from({ length: batch }, () => context.getSequence());
  const speedPrompts = prompts.speed.slice(0, batch);
  const warm = await timed(() => generate(sequences, speedPrompts, newTokens)); // warm-up
  log({ event: 'warm-up', batch, seconds: warm.seconds });
  let fullSeconds = Infinity;
  for (let repeat = 0; repeat < 2; repeat += 1) {
    const { seconds, result } = await timed(() => generate(sequences, speedPrompts, newTokens));
    if (result.some((tokens) => tokens.length !== newTokens)) throw new Error('a row stopped early');
    fullSeconds = Math.min(fullSeconds, seconds);
  }
  let firstSeconds = Infinity;
  for (let repeat = 0; repeat < 3; repeat += 1) {
    firstSeconds = Math.min(firstSeconds, (await timed(() => generate(sequences, speedPrompts, 1))).seconds);
  }
  const decode = fullSeconds - firstSeconds;
  const row = {
    engine: 'llama.cpp',
    quant: args.quant,
    model: args.model,
    batch,
    new_tokens: newTokens,
    prompt_tokens: speedPrompts[0].length,
    generate_seconds: fullSeconds,
    first_token_seconds: firstSeconds,
    decode_tokens_per_second: (batch * (newTokens - 1)) / decode,
    decode_step_ms: (1000 * decode) / (newTokens - 1),
    weight_bytes: weightBytes,
    parameters: args.parameters ? Number(args.parameters) : undefined,
    flash_attention: context.flashAttention,
    context_size: context.contextSize,
    gpu: llama.gpu,
  };
  if (batch === 1) {
    const ttft = [];
    for (let repeat = 0; repeat < 6; repeat += 1) {
      ttft.push((await timed(() => generate(sequences, [prompts.ttft], 1))).seconds * 1000);
    }
    ttft.shift();
    ttft.sort((a, b) => a - b);
    row.ttft_200_ms = ttft[2];
    row.agreement_tokens = [];
    for (const prompt of prompts.agreement) {
      row.agreement_tokens.push((await generate(sequences, [prompt], prompts.agreement_new_tokens))[0]);
    }
  }
  appendFileSync(args.out, JSON.stringify(row) + '\n');
  log({ ...row, agreement_tokens: undefined });
  await context.dispose();
}
await model.dispose();
await llama.dispose();
