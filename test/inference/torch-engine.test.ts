/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type ChatModelRuntime,
  type GenerationResult,
  DecodeEngineRunError,
  DecodeEngineUnavailableError,
  closeTorchDecodeEngines,
  createMicroBatcher,
  loadChatModel,
} from '../../lib/inference';
import {
  chatModelDirectory,
  expectDecidedPrefixesOf,
  fixtureChat,
  fixtureCountdownFrom3,
  fixtureGreedyCases,
  fixtureModelDirectory,
  pythonPath,
  requireBuiltModels,
  requireFixtureModel,
} from './built-models';

// The PyTorch decode engine (WEFT_ENGINE=torch, trainer/decode_engine.py) runs here on CPU in float32, eagerly: the
// same decoder and protocol the CUDA build runs compiled and graph-captured (bench/device runs that part).
const torch = { engine: 'torch' as const, torchEngine: { python: pythonPath } };

const chat = fixtureChat;
const countdownFrom3 = fixtureCountdownFrom3;
const { requests, expected } = fixtureGreedyCases;

afterAll(closeTorchDecodeEngines);

describe('the torch engine keeps the generation semantics (fixture model, outputs fixed by construction)', () => {
  let engine: ChatModelRuntime;
  let hostLoop: ChatModelRuntime;

  beforeAll(async () => {
    requireFixtureModel();
    engine = await loadChatModel(fixtureModelDirectory, torch);
    hostLoop = await loadChatModel(fixtureModelDirectory, { greedyInGraph: 'never' });
  }, 120_000);

  it('budgets, stop strings and stop tokens as the host loop, token for token, in one left-padded batch', async () => {
    expect(engine.decodeEngine).toBe('torch');
    const got = await engine.generate(requests);
    const host = await hostLoop.generate(requests);
    expect(got.map((result) => [result.text, result.finishReason])).toEqual(expected);
    expect(got.map((result) => [result.tokenIds, result.completionTokens])).toEqual(
      host.map((result) => [result.tokenIds, result.completionTokens]),
    );
    expect(got.map((result) => result.timings.batchSize)).toEqual(requests.map(() => requests.length));
  });

  it('streams tokens whose text adds up to the completion and never shows a stop string', async () => {
    const streamed: Array<{ tokenId: number; text: string }> = [];
    const result = await engine.generate({
      ...chat,
      maxNewTokens: 20,
      stopStrings: ['klm'],
      onToken: (event) => streamed.push(event),
    });
    expect(result.text).toBe('abcdefghij');
    expect(streamed.map((event) => event.tokenId)).toEqual(result.tokenIds);
    expect(streamed.map((event) => event.text).join('')).toBe(result.text);
  });

  it('serves the micro-batcher: concurrent greedy requests decode in one engine run', async () => {
    const batcher = createMicroBatcher(engine, { maxBatchSize: 4, maxWaitMs: 20 });
    const results = await Promise.all(requests.slice(0, 4).map((request) => batcher.generate(request)));
    expect(results.map((result) => [result.text, result.finishReason])).toEqual(expected.slice(0, 4));
    expect(results.map((result) => result.timings.batchSize)).toEqual([4, 4, 4, 4]);
    await batcher.close();
  });

  it('a call larger than the batch limit keeps at most that many rows decoding, others joining as rows finish', async () => {
    const narrow = await loadChatModel(fixtureModelDirectory, { ...torch, maxBatchSize: 2 });
    const requests = [2, 9, 4, 7, 3].map((digit, index) => ({ prompt: `count ${digit}`, maxNewTokens: 3 + 2 * index }));
    const results = await narrow.generate(requests);
    expect(results.map((result) => result.text)).toEqual(['10', '87654', '3210', '6543210', '210']);
    expect(results.map((result) => result.finishReason)).toEqual(['stop', 'length', 'stop', 'stop', 'stop']);
    expect(Math.max(...results.map((result) => result.timings.batchSize))).toBe(2);
  });

  it('a request arriving mid-decode joins a free row of the running engine batch and gets its own tokens', async () => {
    const batcher = createMicroBatcher(engine, { maxBatchSize: 4, maxWaitMs: 20 });
    let late: Promise<GenerationResult> | undefined;
    let tokensSeen = 0;
    // Three rows decode in a batch of four (batches are powers of two): one row is free for a newcomer.
    const early = [
      batcher.generate({
        ...chat,
        maxNewTokens: 60,
        onToken: () => {
          // Two tokens in, the batch is mid-decode when the fourth request arrives.
          if (++tokensSeen === 2) late = batcher.generate({ prompt: 'count 4', maxNewTokens: 8 });
        },
      }),
      batcher.generate({ prompt: 'count 9', maxNewTokens: 60 }),
      batcher.generate({ prompt: 'Sea level rises as', maxNewTokens: 60 }),
    ];
    const earlyResults = await Promise.all(early);
    const lateResult = await (late as Promise<GenerationResult>);
    expect(earlyResults[0].tokenIds).toEqual((await hostLoop.generate({ ...chat, maxNewTokens: 60 })).tokenIds);
    expect([lateResult.text, lateResult.finishReason]).toEqual(['3210', 'stop']);
    // It decoded beside the first three instead of waiting for them to end: the batch ran four rows.
    expect(lateResult.timings.batchSize).toBe(4);
    expect(earlyResults[0].timings.batchSize).toBe(4);
    await batcher.close();
  });

  it('leaves sampled and min-new-token rows to the onnxruntime host loop, with the construction results', async () => {
    const forced = await engine.generate({ ...countdownFrom3, maxNewTokens: 5, minNewTokens: 5 });
    expect([forced.text, forced.completionTokens]).toEqual(['21098', 5]);
    const parameters = { ...chat, temperature: 0.7, seed: 7, maxNewTokens: 12 };
    expect((await engine.generate(parameters)).tokenIds).toEqual((await hostLoop.generate(parameters)).tokenIds);
  });

  it('a killed engine process fails the rows decoding then, with the reason; the next request starts a new one', async () => {
    const first = await engine.startTorchEngine();
    // Frozen, the process holds the request unanswered until it is killed: the kill lands mid-request.
    process.kill(first.pid as number, 'SIGSTOP');
    const decoding = engine.generate({ ...chat, maxNewTokens: 8 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.kill(first.pid as number, 'SIGKILL');
    await expect(decoding).rejects.toThrow(DecodeEngineRunError);
    await expect(decoding).rejects.toThrow(/exited \(SIGKILL\)/);
    expect(first.alive).toBe(false);
    const again = await engine.generate({ ...countdownFrom3, maxNewTokens: 10 });
    expect([again.text, again.finishReason]).toEqual(['210', 'stop']);
    expect((await engine.startTorchEngine()).pid).not.toBe(first.pid);
  }, 60_000);
});

describe('the torch engine on the trained demo model (base-chat) equals transformers', () => {
  it('greedy tokens equal the transformers reference up to near-ties, alone and as a left-padded batch', async () => {
    const reference = requireBuiltModels();
    const model = await loadChatModel(chatModelDirectory, torch);
    const ready = (await model.startTorchEngine()).ready;
    expect(ready?.dtype).toBe('float32');
    expect(ready?.check.max_abs_logit_diff).toBeLessThan(1e-3);
    const requestsOf = reference.generations.map((generation) => ({ messages: generation.messages }));
    const alone = [];
    for (const request of requestsOf) {
      alone.push(await model.generate({ ...request, maxNewTokens: reference.max_new_tokens }));
    }
    expectDecidedPrefixesOf(reference, alone, 1e-2);
    const batched = await model.generate(requestsOf, { maxNewTokens: reference.max_new_tokens });
    expectDecidedPrefixesOf(reference, batched, 1e-2);
  }, 120_000);
});

describe('the torch engine refuses what it cannot serve, at load, with what to do', () => {
  it('a model folder without Hugging Face weights', async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'weft-no-hf-'));
    try {
      cpSync(fixtureModelDirectory, path.join(folder, 'onnx'), { recursive: true });
      const loading = loadChatModel(path.join(folder, 'onnx'), torch);
      await expect(loading).rejects.toThrow(DecodeEngineUnavailableError);
      await expect(loading).rejects.toThrow(/no Hugging Face weights .*WEFT_ENGINE=onnxruntime/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('a Python that does not exist', async () => {
    const loading = loadChatModel(fixtureModelDirectory, {
      engine: 'torch',
      torchEngine: { python: '/nonexistent/python3', compile: 'off' },
    });
    await expect(loading).rejects.toThrow(/no Python at \/nonexistent\/python3 \(set WEFT_PYTHON/);
  });
});
