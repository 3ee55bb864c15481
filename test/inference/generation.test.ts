/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type ChatModelRuntime,
  type GenerationResult,
  type TokenEvent,
  createMicroBatcher,
  loadChatModel,
} from '../../lib/inference';
import { type Reference, chatModelDirectory, chatModelFloat16Directory, requireBuiltModels } from './built-models';

describe('chat model generation', () => {
  let reference: Reference;
  let model: ChatModelRuntime;

  beforeAll(async () => {
    reference = requireBuiltModels();
    model = await loadChatModel(chatModelDirectory);
  });

  it('greedy generation equals transformers token for token', async () => {
    for (const expected of reference.generations) {
      const result = await model.generate({ messages: expected.messages, maxNewTokens: reference.max_new_tokens });
      expect(result.promptTokens).toBe(expected.prompt_ids.length);
      expect(result.tokenIds).toEqual(expected.output_ids);
      expect(result.text).toBe(expected.text);
      expect(result.completionTokens).toBe(expected.output_ids.length);
      const endedOnStopToken = model.description.eosTokenIds.includes(expected.output_ids.at(-1) as number);
      expect(result.finishReason).toBe(endedOnStopToken ? 'stop' : 'length');
    }
  });

  it('a left-padded batch gives every request the same greedy output as running it alone', async () => {
    const requests = [
      ...reference.generations.map((generation) => ({ messages: generation.messages })),
      { messages: [{ role: 'user', content: 'What is the greenhouse effect?' }] },
      { prompt: 'Sea level rises as' },
    ];
    const alone = [];
    for (const request of requests) alone.push(await model.generate({ ...request, maxNewTokens: 20 }));
    const batched = await model.generate(requests, { maxNewTokens: 20 });
    expect(batched.map((result) => result.tokenIds)).toEqual(alone.map((result) => result.tokenIds));
    expect(batched.map((result) => result.text)).toEqual(alone.map((result) => result.text));
    expect(batched.every((result) => result.timings.batchSize === requests.length)).toBe(true);
  });

  it('a call larger than the batch limit keeps at most that many rows per pass, others joining as rows finish', async () => {
    const narrow = await loadChatModel(chatModelDirectory, { maxBatchSize: 2 });
    const requests = reference.generations.map((generation, index) => ({
      messages: generation.messages,
      maxNewTokens: 4 + 3 * index,
      minNewTokens: 4 + 3 * index,
    }));
    const alone = [];
    for (const request of requests) alone.push(await model.generate(request));
    const results = await narrow.generate(requests);
    expect(results.map((result) => result.tokenIds)).toEqual(alone.map((result) => result.tokenIds));
    expect(results.map((result) => result.completionTokens)).toEqual(requests.map((request) => request.maxNewTokens));
    expect(Math.max(...results.map((result) => result.timings.batchSize))).toBe(2);
  });

  it('streams tokens whose text adds up to the final completion', async () => {
    const events: TokenEvent[] = [];
    const [first, second] = await model.generate(
      [{ messages: reference.generations[0].messages }, { messages: reference.generations[1].messages }],
      { maxNewTokens: 16, onToken: (event) => events.push(event) },
    );
    for (const [index, result] of [first, second].entries()) {
      const mine = events.filter((event) => event.requestIndex === index);
      expect(mine.map((event) => event.tokenId)).toEqual(result.tokenIds);
      expect(mine.map((event) => event.text).join('')).toBe(result.text);
    }
  });

  it('stops at max new tokens and at a stop string, which is left out of the text', async () => {
    const messages = reference.generations[0].messages;
    const short = await model.generate({ messages, maxNewTokens: 3 });
    expect(short.completionTokens).toBeLessThanOrEqual(3);
    if (short.completionTokens === 3) expect(short.finishReason).toBe('length');

    const full = await model.generate({ messages, maxNewTokens: 24 });
    const words = full.text.trim().split(/\s+/);
    expect(words.length).toBeGreaterThan(2);
    const stop = ` ${words[2]}`;
    const stopped = await model.generate({ messages, maxNewTokens: 24, stopStrings: [stop] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it('rows of one batch stop independently: a one-token request ends while its neighbours continue', async () => {
    const [one, long] = await model.generate([
      { messages: reference.generations[0].messages, maxNewTokens: 1 },
      { messages: reference.generations[1].messages, maxNewTokens: 12, minNewTokens: 12 },
    ]);
    expect(one.tokenIds).toEqual(reference.generations[0].output_ids.slice(0, 1));
    expect(one.finishReason).toBe(model.description.eosTokenIds.includes(one.tokenIds[0]) ? 'stop' : 'length');
    // min new tokens holds back the stop token, as transformers' min_new_tokens does.
    expect(long.completionTokens).toBe(12);
    expect(long.finishReason).toBe('length');
    expect(long.tokenIds.some((id) => model.description.eosTokenIds.includes(id))).toBe(false);
  });

  it('sampling with a seed is reproducible, batched or not', async () => {
    const messages = reference.generations[2].messages;
    const parameters = { temperature: 0.9, minP: 0.05, topP: 0.95, seed: 1234, maxNewTokens: 20 };
    const first = await model.generate({ messages, ...parameters });
    const again = await model.generate({ messages, ...parameters });
    expect(again.tokenIds).toEqual(first.tokenIds);
    const [inBatch] = await model.generate([
      { messages, ...parameters },
      { messages: reference.generations[3].messages, ...parameters, seed: 99 },
    ]);
    expect(inBatch.tokenIds).toEqual(first.tokenIds);
  });

  it('a request arriving while the batcher decodes joins the running batch and gets the same tokens', async () => {
    const batcher = createMicroBatcher(model, { maxBatchSize: 4, maxWaitMs: 1 });
    const first = { messages: reference.generations[0].messages, maxNewTokens: 24, minNewTokens: 24 };
    const second = { messages: reference.generations[1].messages, maxNewTokens: 8, minNewTokens: 8 };
    const [firstAlone, secondAlone] = [await model.generate(first), await model.generate(second)];
    let late: Promise<GenerationResult> | undefined;
    let firstTokens = 0;
    const early = batcher.generate({
      ...first,
      onToken: () => {
        // Two tokens in, the first request is mid-decode when the second arrives.
        firstTokens += 1;
        if (firstTokens === 2) late = batcher.generate(second);
      },
    });
    const earlyResult = await early;
    const lateResult = await (late as Promise<GenerationResult>);
    expect(earlyResult.tokenIds).toEqual(firstAlone.tokenIds);
    expect(lateResult.tokenIds).toEqual(secondAlone.tokenIds);
    expect(lateResult.timings.batchSize).toBe(2);
    expect(earlyResult.timings.batchSize).toBe(2);
    await batcher.close();
  });

  it('concurrent calls through the micro-batcher share forward passes and match direct calls', async () => {
    const batcher = createMicroBatcher(model, { maxBatchSize: 4, maxWaitMs: 20 });
    const requests = reference.generations.slice(0, 4).map((generation) => ({
      messages: generation.messages,
      maxNewTokens: 12,
    }));
    const direct = await model.generate(requests);
    const viaBatcher = await Promise.all(requests.map((request) => batcher.generate(request)));
    expect(viaBatcher.map((result) => result.tokenIds)).toEqual(direct.map((result) => result.tokenIds));
    expect(viaBatcher.map((result) => result.timings.batchSize)).toEqual([4, 4, 4, 4]);
    await batcher.close();
  });

  describe('in-graph greedy decoding (generate_greedy.onnx)', () => {
    let inGraph: ChatModelRuntime;
    let hostLoop: ChatModelRuntime;

    beforeAll(async () => {
      inGraph = await loadChatModel(chatModelDirectory, { greedyInGraph: 'always' });
      hostLoop = await loadChatModel(chatModelDirectory, { greedyInGraph: 'never' });
      expect(inGraph.decodesInGraph).toBe(true);
      expect(hostLoop.decodesInGraph).toBe(false);
    });

    it("gives transformers' greedy tokens, alone and as a left-padded batch", async () => {
      for (const expected of reference.generations) {
        const result = await inGraph.generate({ messages: expected.messages, maxNewTokens: reference.max_new_tokens });
        expect(result.tokenIds).toEqual(expected.output_ids);
        expect(result.text).toBe(expected.text);
      }
      const batched = await inGraph.generate(
        reference.generations.map((generation) => ({ messages: generation.messages })),
        { maxNewTokens: reference.max_new_tokens },
      );
      expect(batched.map((result) => result.tokenIds)).toEqual(reference.generations.map((g) => g.output_ids));
      expect(batched.every((result) => result.timings.batchSize === reference.generations.length)).toBe(true);
    });

    it('matches the host loop row by row: own budgets, stop strings, stop tokens and finish reasons', async () => {
      const full = await hostLoop.generate({ messages: reference.generations[0].messages, maxNewTokens: 24 });
      const stop = ` ${full.text.trim().split(/\s+/)[2]}`;
      const requests = [
        { messages: reference.generations[0].messages, maxNewTokens: 24, stopStrings: [stop] },
        { messages: reference.generations[1].messages, maxNewTokens: 1 },
        { messages: reference.generations[2].messages, maxNewTokens: 40 },
        { prompt: 'Sea level rises as', maxNewTokens: 7 },
      ];
      const expected = await hostLoop.generate(requests);
      const got = await inGraph.generate(requests);
      expect(got.map((r) => [r.tokenIds, r.text, r.finishReason])).toEqual(
        expected.map((r) => [r.tokenIds, r.text, r.finishReason]),
      );
      expect(got[0].finishReason).toBe('stop');
      expect(got[1].completionTokens).toBe(1);
    });

    it('leaves sampled, streamed and min-new-token rows to the host loop, with the same results', async () => {
      const messages = reference.generations[2].messages;
      const sampled = { messages, temperature: 0.9, seed: 7, maxNewTokens: 12 };
      expect((await inGraph.generate(sampled)).tokenIds).toEqual((await hostLoop.generate(sampled)).tokenIds);
      const streamed: number[] = [];
      const result = await inGraph.generate({ messages, maxNewTokens: 8, onToken: (e) => streamed.push(e.tokenId) });
      expect(streamed).toEqual(result.tokenIds);
      const forced = { messages, maxNewTokens: 10, minNewTokens: 10 };
      expect((await inGraph.generate(forced)).completionTokens).toBe(10);
    });

    it('falls back to the host loop, with one warning and the same tokens, when generate_greedy.onnx cannot run', async () => {
      const folder = mkdtempSync(path.join(os.tmpdir(), 'weft-broken-loop-'));
      try {
        for (const name of readdirSync(chatModelDirectory))
          copyFileSync(path.join(chatModelDirectory, name), path.join(folder, name));
        writeFileSync(path.join(folder, 'generate_greedy.onnx'), 'not an onnx model');
        const warnings: string[] = [];
        const broken = await loadChatModel(folder, {
          greedyInGraph: 'always',
          logger: { warn: (message) => warnings.push(message) },
        });
        const requests = reference.generations.slice(0, 2).map((generation) => ({ messages: generation.messages }));
        const first = await broken.generate(requests, { maxNewTokens: 12 });
        const again = await broken.generate(requests, { maxNewTokens: 12 });
        const expected = await hostLoop.generate(requests, { maxNewTokens: 12 });
        expect(first.map((r) => r.tokenIds)).toEqual(expected.map((r) => r.tokenIds));
        expect(again.map((r) => r.tokenIds)).toEqual(expected.map((r) => r.tokenIds));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/generate_greedy\.onnx .* cannot run here; decoding step by step instead/);
        expect(broken.decodesInGraph).toBe(false);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    });

    it('serves the micro-batcher: concurrent greedy requests decode in one graph run and match direct calls', async () => {
      const batcher = createMicroBatcher(inGraph, { maxBatchSize: 4, maxWaitMs: 20 });
      const requests = reference.generations.slice(0, 4).map((generation) => ({
        messages: generation.messages,
        maxNewTokens: 12,
      }));
      const direct = await hostLoop.generate(requests);
      const viaBatcher = await Promise.all(requests.map((request) => batcher.generate(request)));
      expect(viaBatcher.map((result) => result.tokenIds)).toEqual(direct.map((result) => result.tokenIds));
      expect(viaBatcher.map((result) => result.timings.batchSize)).toEqual([4, 4, 4, 4]);
      await batcher.close();
    });
  });

  it('runs a float16 export: host loop and in-graph agree, and it follows the float32 model', async () => {
    const hostLoop = await loadChatModel(chatModelFloat16Directory, { greedyInGraph: 'never' });
    const inGraph = await loadChatModel(chatModelFloat16Directory, { greedyInGraph: 'always' });
    const requests = reference.generations.map((generation) => ({ messages: generation.messages }));
    const options = { maxNewTokens: reference.max_new_tokens };
    const [host, graph, float32] = [
      await hostLoop.generate(requests, options),
      await inGraph.generate(requests, options),
      await model.generate(requests, options),
    ];
    expect(graph.map((r) => r.tokenIds)).toEqual(host.map((r) => r.tokenIds));
    // Half precision may flip a near tie late in a completion, not the opening tokens of every prompt.
    const sameFirstTokens = float32.filter(
      (r, i) => r.tokenIds.slice(0, 3).join() === host[i].tokenIds.slice(0, 3).join(),
    );
    expect(sameFirstTokens.length).toBeGreaterThanOrEqual(float32.length - 1);
  });
});
