/**
 * Where a decode step's time goes in generate_greedy.onnx, from onnxruntime's own profiler:
 *
 *   npx tsx bench/device/profile-decode.ts --model /root/weft-llama/onnx [--batches 1,32] [--new-tokens 32]
 *
 * For each batch size: one warm-up run, then one profiled run of --new-tokens greedy steps on prompts of 128
 * tokens. Prints the run's wall time per step, the number of node executions per step, the CPU-side time those
 * executions took per step (on CUDA that is launch and bookkeeping: kernels run asynchronously), the execution
 * providers the nodes ran on, and the operators with the most time. Run with WEFT_EXECUTION_PROVIDER=cuda|cpu.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { greedyLoopFileName } from '../../lib/inference/chat-model';

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; provider?: string };
}

function option(argv: readonly string[], flag: string, fallback: string): string {
  const index = argv.indexOf(flag);
  return index >= 0 && argv[index + 1] !== undefined ? argv[index + 1] : fallback;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const folder = option(argv, '--model', '');
  if (!folder) throw new Error('--model <onnx folder with generate_greedy.onnx> is required');
  const batches = option(argv, '--batches', '1,32').split(',').map(Number);
  const newTokens = Number(option(argv, '--new-tokens', '32'));
  const provider = process.env.WEFT_EXECUTION_PROVIDER === 'cpu' ? 'cpu' : 'cuda';
  const manifest = JSON.parse(readFileSync(path.join(folder, 'weft-model.json'), 'utf8')) as { vocab_size: number };
  const profileDirectory = path.join(os.tmpdir(), `weft-profile-${process.pid}`);
  mkdirSync(profileDirectory, { recursive: true });
  for (const batch of batches) {
    const session = await ort.InferenceSession.create(path.join(folder, greedyLoopFileName), {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      enableProfiling: true,
      profileFilePrefix: path.join(profileDirectory, `b${batch}`),
    });
    const width = 128;
    const ids = BigInt64Array.from({ length: batch * width }, (_, i) =>
      BigInt(5 + ((i * 7919) % (manifest.vocab_size - 5))),
    );
    const feeds = {
      prompt_ids: new ort.Tensor('int64', ids, [batch, width]),
      prompt_attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * width).fill(1n), [batch, width]),
      prompt_position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: batch * width }, (_, i) => BigInt(i % width)),
        [batch, width],
      ),
      max_new_tokens: new ort.Tensor('int64', BigInt64Array.of(BigInt(newTokens)), []),
      eos_token_ids: new ort.Tensor('int64', BigInt64Array.of(-1n), [1]),
      pad_token_id: new ort.Tensor('int64', BigInt64Array.of(0n), []),
    };
    await session.run(feeds);
    const started = performance.now();
    await session.run(feeds);
    const wallMs = performance.now() - started;
    session.endProfiling();
    await session.release();
    const file = readdirSync(profileDirectory).find((name) => name.startsWith(`b${batch}`));
    if (!file) throw new Error(`no profile written in ${profileDirectory}`);
    const events = JSON.parse(readFileSync(path.join(profileDirectory, file), 'utf8')) as ProfileEvent[];
    // Two runs were profiled (warm-up and timed): halve the totals.
    // The Loop node's own time encloses its body's nodes: counted apart, not added to theirs.
    const nodes = events.filter(
      (event) => event.cat === 'Node' && event.name.endsWith('_kernel_time') && event.args?.op_name !== 'Loop',
    );
    const byOperator = new Map<string, { count: number; us: number }>();
    const byProvider = new Map<string, number>();
    for (const event of nodes) {
      const key = `${event.args?.op_name ?? '?'}@${event.args?.provider ?? '?'}`;
      const entry = byOperator.get(key) ?? { count: 0, us: 0 };
      entry.count += 1;
      entry.us += event.dur;
      byOperator.set(key, entry);
      byProvider.set(event.args?.provider ?? '?', (byProvider.get(event.args?.provider ?? '?') ?? 0) + 1);
    }
    const steps = 2 * newTokens;
    const top = [...byOperator.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 15)
      .map(([key, entry]) => ({ op: key, perStep: entry.count / steps, usPerStep: entry.us / steps }));
    console.log(
      JSON.stringify({
        event: 'profile',
        batch,
        provider,
        wallMsPerStep: wallMs / newTokens,
        nodeExecutionsPerStep: nodes.length / steps,
        nodeMsPerStep: nodes.reduce((sum, event) => sum + event.dur, 0) / 1000 / steps,
        nodesByProvider: Object.fromEntries([...byProvider].map(([name, count]) => [name, count / steps])),
        top,
      }),
    );
  }
  rmSync(profileDirectory, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
