/**
 * weft's decode speed on a GPU against PyTorch eager on the same GPU, same weights shape, same prompts:
 *
 *   npx tsx bench/device/decode-bench.ts --model /root/weft-llama/onnx --pytorch /root/weft-llama/pytorch.json
 *       [--new-tokens 128] [--batches 1,32] [--bandwidth-tbps 4.8] [--out results.json]
 *   npx tsx bench/device/decode-bench.ts --model DIR --prompts W/N/prompts.json [--decoders in-graph] [--out …]
 *
 * With --prompts (bench/device/engines.py's prompts.json) the speed prompts come from there, and the summary adds the
 * median time to first token of its 200-token prompt (batch 1) and weft's greedy tokens on its agreement prompts,
 * which `engines.py weft` turns into rows beside the PyTorch engines'. One forward pass carries the whole batch
 * (maxBatchSize = the largest --batches). No minNewTokens: weft decodes in-graph only without it (it would silently
 * take the host loop), so a model with a real stop token can end rows early; the bench then refuses to time it
 * (random-weight models from llama_1b.py have no stop token).
 *
 * The model folder and pytorch.json come from bench/device/llama_1b.py (run first, on the same machine). For each
 * batch size it times weft's two decoders with the protocol llama_1b.py used for PyTorch — greedy, every row exactly
 * --new-tokens long, best of two, and a one-token run to take the prefill out:
 *   in-graph   generate_greedy.onnx: one session run, the key/value cache stays on the GPU
 *   host loop  model.onnx step by step: onnxruntime-node copies the cache to and from the GPU every step
 * and prints decode tokens/s, the ratio to PyTorch, and batch 1's decode steps/s against the HBM bandwidth limit
 * (weight bytes / bandwidth per step). It also checks that weft's greedy tokens are PyTorch's for 4 prompts.
 * Refuses to time anything when onnxruntime fell back to CPU (WEFT_EXECUTION_PROVIDER=cuda and its libraries).
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type ChatModelRuntime, loadChatModel, releaseAllSessions } from '../../lib/inference';

interface Options {
  model: string;
  pytorch: string;
  prompts: string;
  decoders: string[];
  newTokens: number;
  batches: number[];
  bandwidthTbps: number;
  out: string | undefined;
}

interface EnginePrompts {
  speed: number[][];
  ttft: number[];
  agreement: number[][];
  agreement_new_tokens: number;
}

interface PyTorchResults {
  parameters: number;
  device: string;
  torch: string;
  prompts: number[][];
  pytorch: Record<string, { decode_tokens_per_second: number; tokens_per_second: number; decode_step_ms: number }>;
  pytorch_float16_greedy_16?: number[][];
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    model: '',
    pytorch: '',
    prompts: '',
    decoders: ['in-graph', 'host-loop'],
    newTokens: 128,
    batches: [1, 32],
    bandwidthTbps: 4.8,
    out: undefined,
  };
  for (let index = 0; index < argv.length; index += 2) {
    const [flag, value] = [argv[index], argv[index + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--model') options.model = value;
    else if (flag === '--pytorch') options.pytorch = value;
    else if (flag === '--prompts') options.prompts = value;
    else if (flag === '--decoders') options.decoders = value.split(',');
    else if (flag === '--new-tokens') options.newTokens = Number(value);
    else if (flag === '--batches') options.batches = value.split(',').map(Number);
    else if (flag === '--bandwidth-tbps') options.bandwidthTbps = Number(value);
    else if (flag === '--out') options.out = value;
    else throw new Error(`unknown option ${flag} (see the header of bench/device/decode-bench.ts)`);
  }
  if (!options.model || !(options.pytorch || options.prompts))
    throw new Error('--model and --pytorch or --prompts are required');
  return options;
}

async function seconds(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

async function decodeTiming(model: ChatModelRuntime, prompts: number[][], newTokens: number) {
  const requests = (count: number) => prompts.map((ids) => ({ promptTokenIds: ids, maxNewTokens: count }));
  await model.generate(requests(newTokens)); // warm-up: kernels, arena
  let full = Infinity;
  let completion = 0;
  for (let run = 0; run < 2; run++) {
    full = Math.min(
      full,
      await seconds(async () => {
        const results = await model.generate(requests(newTokens));
        completion = results.reduce((sum, result) => sum + result.completionTokens, 0);
      }),
    );
  }
  let prefill = Infinity;
  for (let run = 0; run < 3; run++) prefill = Math.min(prefill, await seconds(() => model.generate(requests(1))));
  const batch = prompts.length;
  if (completion !== batch * newTokens) {
    throw new Error(
      `${completion} of ${batch * newTokens} tokens generated: rows stopped early, so decode tokens/s would be wrong`,
    );
  }
  return {
    batch,
    completionTokens: completion,
    generateSeconds: full,
    prefillSeconds: prefill,
    tokensPerSecond: completion / full,
    decodeTokensPerSecond: (batch * (newTokens - 1)) / (full - prefill),
    decodeStepMs: (1000 * (full - prefill)) / (newTokens - 1),
  };
}

function weightBytes(folder: string): number {
  let total = 0;
  // Weights inside model.onnx, in its side file, or in per-layer weight files (trainer/weight_files.py).
  const weightFiles = readdirSync(folder).filter((name) => /^weights\.[^/]+\.bin$/.test(name));
  for (const name of ['model.onnx', 'model.onnx.data', ...weightFiles]) {
    try {
      total += statSync(path.join(folder, name)).size;
    } catch {
      // no side file: the weights are inside model.onnx
    }
  }
  return total;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const reference: PyTorchResults = options.pytorch
    ? (JSON.parse(readFileSync(options.pytorch, 'utf8')) as PyTorchResults)
    : { parameters: 0, device: '', torch: '', prompts: [], pytorch: {} };
  const enginePrompts = options.prompts
    ? (JSON.parse(readFileSync(options.prompts, 'utf8')) as EnginePrompts)
    : undefined;
  if (enginePrompts) reference.prompts = enginePrompts.speed;
  const maxBatchSize = Math.max(...options.batches);
  const provider = process.env.WEFT_EXECUTION_PROVIDER === 'cpu' ? 'cpu' : 'cuda';
  const logger = {
    warn: (message: string, attributes?: Record<string, unknown>) => console.error(message, attributes),
  };
  const inGraph = await loadChatModel(options.model, {
    executionProvider: provider,
    greedyInGraph: 'always',
    logger,
    maxBatchSize,
  });
  const hostLoop = options.decoders.includes('host-loop')
    ? await loadChatModel(options.model, { executionProvider: provider, greedyInGraph: 'never', maxBatchSize })
    : inGraph;
  console.log(JSON.stringify({ event: 'loaded', executionProvider: inGraph.executionProvider }));
  if (inGraph.executionProvider !== provider) {
    throw new Error(`onnxruntime fell back to ${inGraph.executionProvider}; not timing a 1B model there`);
  }

  const agreement = [];
  if (reference.pytorch_float16_greedy_16) {
    const prompts = reference.prompts.slice(0, reference.pytorch_float16_greedy_16.length);
    const results = await inGraph.generate(prompts.map((ids) => ({ promptTokenIds: ids, maxNewTokens: 16 })));
    for (const [index, result] of results.entries()) {
      const expected = reference.pytorch_float16_greedy_16[index];
      let same = 0;
      while (same < expected.length && result.tokenIds[same] === expected[same]) same++;
      agreement.push(same);
    }
    console.log(JSON.stringify({ event: 'greedy_agreement', leadingTokensEqualToPyTorch: agreement, of: 16 }));
  }

  let ttft200Ms: number | undefined;
  let agreementTokens: number[][] | undefined;
  if (enginePrompts) {
    const first = () => inGraph.generate({ promptTokenIds: enginePrompts.ttft, maxNewTokens: 1 });
    await first();
    const times: number[] = [];
    for (let run = 0; run < 5; run++) times.push(1000 * (await seconds(first)));
    ttft200Ms = times.sort((a, b) => a - b)[2];
    const count = enginePrompts.agreement_new_tokens;
    const results = await inGraph.generate(
      enginePrompts.agreement.map((ids) => ({ promptTokenIds: ids, maxNewTokens: count })),
    );
    agreementTokens = results.map((result) => result.tokenIds);
    console.log(JSON.stringify({ event: 'ttft_and_agreement', ttft200Ms, agreementTokens }));
  }

  const bytes = weightBytes(options.model);
  const limitStepsPerSecond = (options.bandwidthTbps * 1e12) / bytes;
  const rows = [];
  for (const batch of options.batches) {
    const prompts = reference.prompts.slice(0, batch);
    const pytorch = reference.pytorch[`batch${batch}`];
    for (const [decoder, model] of (
      [
        ['in-graph', inGraph],
        ['host-loop', hostLoop],
      ] as const
    ).filter(([name]) => options.decoders.includes(name))) {
      const timing = await decodeTiming(model, prompts, options.newTokens);
      if (decoder === 'in-graph' && !inGraph.decodesInGraph) {
        throw new Error(
          'generate_greedy.onnx could not run (see the warning above); its timings would be the host loop',
        );
      }
      const row = {
        decoder,
        ...timing,
        pytorchDecodeTokensPerSecond: pytorch?.decode_tokens_per_second,
        ratioToPyTorch: pytorch ? timing.decodeTokensPerSecond / pytorch.decode_tokens_per_second : undefined,
        fractionOfBandwidthLimit: 1000 / timing.decodeStepMs / limitStepsPerSecond,
      };
      rows.push(row);
      console.log(JSON.stringify({ event: 'decode', ...row }));
    }
  }
  const summary = {
    event: 'summary',
    device: reference.device,
    parameters: reference.parameters,
    weightBytes: bytes,
    bandwidthLimitStepsPerSecond: limitStepsPerSecond,
    greedyAgreement: agreement,
    executionProvider: inGraph.executionProvider,
    maxBatchSize,
    ttft200Ms,
    agreementTokens,
    rows,
  };
  console.log(JSON.stringify(summary));
  if (options.out) writeFileSync(options.out, `${JSON.stringify(summary, null, 2)}\n`);
  await releaseAllSessions();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
