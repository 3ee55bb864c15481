/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type ChatModelRuntime,
  type GenerationResult,
  type TokenEvent,
  createMicroBatcher,
  loadChatModel,
} from '../../lib/inference';
import {
  type Reference,
  chatModelDirectory,
  chatModelFloat16Directory,
  expectDecidedPrefixesOf,
  fixtureModelDirectory,
  fixtureChat,
  fixtureCountdownFrom3,
  fixtureGreedyCases,
  fixtureModelFloat16Directory,
  requireBuiltModels,
  requireFixtureModel,
} from './built-models';

// The fixture model's construction: see fixtureChat in built-models.ts.
const chat = fixtureChat;
const alphabet = 'abcdefghijklmnopqrstuvwxyz';
const countdownFrom3 = fixtureCountdownFrom3;

describe('generation semantics on the fixture model (outputs fixed by construction)', () => {
  let model: ChatModelRuntime;
  let stopTokenId: number;

  beforeAll(async () => {
    requireFixtureModel();
    // The host loop's semantics (rows prefilled one by one, joining and leaving between passes); the in-graph
    // decoder, the default, has its own tests below.
    model = await loadChatModel(fixtureModelDirectory, { greedyInGraph: 'never' });
    stopTokenId = model.description.eosTokenIds[0];
  });

  it('a chat reply follows the construction and ends at the budget with finish reason length', async () => {
    const result = await model.generate({ ...chat, maxNewTokens: 30 });
    expect(result.text).toBe(`${alphabet} abc`);
    expect(result.completionTokens).toBe(30);
    expect(result.finishReason).toBe('length');
  });

  it('a stop token before the budget ends the completion: finish reason stop, the token counted, not in the text', async () => {
    const result = await model.generate({ ...countdownFrom3, maxNewTokens: 10 });
    expect(result.text).toBe('210');
    expect(result.tokenIds.at(-1)).toBe(stopTokenId);
    expect(result.completionTokens).toBe(4);
    expect(result.finishReason).toBe('stop');
  });

  // The edge case, decided as OpenAI-style servers (vLLM, TGI) do: the stop check comes before the length check, and
  // the stop token counts as a completion token.
  it('a stop token as the last allowed token is finish reason stop, counted; one budget less is length', async () => {
    const exactly = await model.generate({ ...countdownFrom3, maxNewTokens: 4 });
    expect([exactly.text, exactly.completionTokens, exactly.finishReason]).toEqual(['210', 4, 'stop']);
    expect(exactly.tokenIds.at(-1)).toBe(stopTokenId);
    const oneShort = await model.generate({ ...countdownFrom3, maxNewTokens: 3 });
    expect([oneShort.text, oneShort.completionTokens, oneShort.finishReason]).toEqual(['210', 3, 'length']);
    expect(oneShort.tokenIds).not.toContain(stopTokenId);
  });

  it('min new tokens holds the stop token back, as transformers min_new_tokens does', async () => {
    const result = await model.generate({ ...countdownFrom3, maxNewTokens: 6, minNewTokens: 6 });
    expect(result.text).toBe('210987');
    expect(result.finishReason).toBe('length');
    expect(result.tokenIds).not.toContain(stopTokenId);
    const released = await model.generate({ ...countdownFrom3, maxNewTokens: 20, minNewTokens: 3 });
    expect([released.text, released.finishReason]).toEqual(['210', 'stop']);
  });

  it('a stop string ends the completion and is left out, also when it spans tokens', async () => {
    const stopped = await model.generate({ ...chat, maxNewTokens: 30, stopStrings: ['fgh'] });
    expect([stopped.text, stopped.finishReason]).toEqual(['abcde', 'stop']);
    expect(stopped.completionTokens).toBe(8); // 'f', 'g', 'h' were generated, then cut from the text
    const earliest = await model.generate({ ...chat, maxNewTokens: 30, stopStrings: ['xyz', 'cd'] });
    expect(earliest.text).toBe('ab');
    const absent = await model.generate({ ...chat, maxNewTokens: 5, stopStrings: ['0'] });
    expect([absent.text, absent.finishReason]).toEqual(['abcde', 'length']);
  });

  it('rows of one left-padded batch keep their own prompts, budgets and stop reasons', async () => {
    const requests = [
      { ...chat, maxNewTokens: 5 },
      { prompt: 'count 7', maxNewTokens: 20 },
      { prompt: 'x', maxNewTokens: 4 },
      { ...countdownFrom3, maxNewTokens: 1 },
      { ...chat, maxNewTokens: 12, stopStrings: ['ghi'] },
    ];
    const batched = await model.generate(requests);
    expect(batched.map((result) => [result.text, result.finishReason])).toEqual([
      ['abcde', 'length'],
      ['6543210', 'stop'],
      ['yz a', 'length'],
      ['2', 'length'],
      ['abcdef', 'stop'],
    ]);
    // Prompts are prefilled one by one; the one-token request ends there, the other four decode together.
    expect(batched.map((result) => result.timings.batchSize)).toEqual([4, 4, 4, 1, 4]);
  });

  it('a call larger than the batch limit keeps at most that many rows per pass, others joining as rows finish', async () => {
    const narrow = await loadChatModel(fixtureModelDirectory, { maxBatchSize: 2 });
    const requests = [2, 9, 4, 7, 3].map((digit, index) => ({ prompt: `count ${digit}`, maxNewTokens: 3 + 2 * index }));
    const results = await narrow.generate(requests);
    expect(results.map((result) => result.text)).toEqual(['10', '87654', '3210', '6543210', '210']);
    expect(results.map((result) => result.finishReason)).toEqual(['stop', 'length', 'stop', 'stop', 'stop']);
    expect(Math.max(...results.map((result) => result.timings.batchSize))).toBe(2);
  });

  it('streams tokens whose text adds up to the final completion, never showing a stop string', async () => {
    const events: TokenEvent[] = [];
    const [first, second] = await model.generate(
      [
        { ...chat, stopStrings: ['jkl'] },
        { prompt: 'count 5', minNewTokens: 1 },
      ],
      { maxNewTokens: 16, onToken: (event) => events.push(event) },
    );
    expect([first.text, second.text]).toEqual(['abcdefghi', '43210']);
    for (const [index, result] of [first, second].entries()) {
      const mine = events.filter((event) => event.requestIndex === index);
      expect(mine.map((event) => event.tokenId)).toEqual(result.tokenIds);
      expect(mine.map((event) => event.text).join('')).toBe(result.text);
    }
    expect(events.filter((event) => event.requestIndex === 0).some((event) => event.text.includes('j'))).toBe(false);
  });

  it('a request arriving while the batcher decodes joins the running batch and gets its own tokens', async () => {
    const batcher = createMicroBatcher(model, { maxBatchSize: 4, maxWaitMs: 1 });
    let late: Promise<GenerationResult> | undefined;
    let firstTokens = 0;
    const early = batcher.generate({
      ...chat,
      maxNewTokens: 24,
      onToken: () => {
        // Two tokens in, the first request is mid-decode when the second arrives.
        firstTokens += 1;
        if (firstTokens === 2) late = batcher.generate({ prompt: 'count 4', maxNewTokens: 8 });
      },
    });
    const earlyResult = await early;
    const lateResult = await (late as Promise<GenerationResult>);
    expect(earlyResult.text).toBe(alphabet.slice(0, 24));
    expect([lateResult.text, lateResult.finishReason]).toEqual(['3210', 'stop']);
    expect(lateResult.timings.batchSize).toBe(2);
    expect(earlyResult.timings.batchSize).toBe(2);
    await batcher.close();
  });

  it('concurrent calls through the micro-batcher share forward passes and match direct calls', async () => {
    const batcher = createMicroBatcher(model, { maxBatchSize: 4, maxWaitMs: 20 });
    const requests = [{ ...chat }, { prompt: 'count 9' }, { prompt: 'p' }, { prompt: 'count 1' }].map((request) => ({
      ...request,
      maxNewTokens: 12,
    }));
    const direct = await model.generate(requests);
    const viaBatcher = await Promise.all(requests.map((request) => batcher.generate(request)));
    expect(viaBatcher.map((result) => result.text)).toEqual(['abcdefghijkl', '876543210', 'qrstuvwxyz a', '0']);
    expect(viaBatcher.map((result) => result.tokenIds)).toEqual(direct.map((result) => result.tokenIds));
    expect(viaBatcher.map((result) => result.timings.batchSize)).toEqual([4, 4, 4, 4]);
    await batcher.close();
  });

  describe('in-graph greedy decoding (generate_greedy.onnx)', () => {
    const { requests, expected } = fixtureGreedyCases;

    it('decodes inside onnxruntime with the host loop semantics: budgets, stop strings, stop tokens', async () => {
      for (const folder of [fixtureModelDirectory, fixtureModelFloat16Directory]) {
        const inGraph = await loadChatModel(folder, { greedyInGraph: 'always' });
        const hostLoop = await loadChatModel(folder, { greedyInGraph: 'never' });
        expect([inGraph.decodesInGraph, hostLoop.decodesInGraph]).toEqual([true, false]);
        const got = await inGraph.generate(requests);
        const host = await hostLoop.generate(requests);
        expect(got.map((result) => [result.text, result.finishReason])).toEqual(expected);
        expect(got.map((result) => [result.tokenIds, result.completionTokens])).toEqual(
          host.map((result) => [result.tokenIds, result.completionTokens]),
        );
      }
    });

    it('leaves streamed and min-new-token rows to the host loop, with the construction results', async () => {
      const inGraph = await loadChatModel(fixtureModelDirectory, { greedyInGraph: 'always' });
      const streamed: number[] = [];
      const result = await inGraph.generate({
        ...chat,
        maxNewTokens: 8,
        onToken: (event) => streamed.push(event.tokenId),
      });
      expect(streamed).toEqual(result.tokenIds);
      expect(result.text).toBe('abcdefgh');
      const forced = await inGraph.generate({ ...countdownFrom3, maxNewTokens: 5, minNewTokens: 5 });
      expect([forced.text, forced.completionTokens]).toEqual(['21098', 5]);
    });

    it('falls back to the host loop, with one warning and the same tokens, when generate_greedy.onnx cannot run', async () => {
      const folder = mkdtempSync(path.join(os.tmpdir(), 'weft-broken-loop-'));
      try {
        for (const name of readdirSync(fixtureModelDirectory))
          copyFileSync(path.join(fixtureModelDirectory, name), path.join(folder, name));
        writeFileSync(path.join(folder, 'generate_greedy.onnx'), 'not an onnx model');
        const warnings: string[] = [];
        const broken = await loadChatModel(folder, {
          greedyInGraph: 'always',
          logger: { warn: (message) => warnings.push(message) },
        });
        const first = await broken.generate(requests);
        const again = await broken.generate(requests);
        expect(first.map((result) => [result.text, result.finishReason])).toEqual(expected);
        expect(again.map((result) => result.tokenIds)).toEqual(first.map((result) => result.tokenIds));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/generate_greedy\.onnx .* cannot run here; decoding step by step instead/);
        expect(broken.decodesInGraph).toBe(false);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    });

    it('serves the micro-batcher: concurrent greedy requests decode in one graph run', async () => {
      const inGraph = await loadChatModel(fixtureModelDirectory, { greedyInGraph: 'always' });
      const batcher = createMicroBatcher(inGraph, { maxBatchSize: 4, maxWaitMs: 20 });
      const results = await Promise.all(requests.slice(0, 4).map((request) => batcher.generate(request)));
      expect(results.map((result) => [result.text, result.finishReason])).toEqual(expected.slice(0, 4));
      expect(results.map((result) => result.timings.batchSize)).toEqual([4, 4, 4, 4]);
      await batcher.close();
    });
  });
});

// Parity of the trained demo model with transformers. Two correct implementations may part at a near-tie (rounding
// breaks it either way), so tokens are compared up to the first step where PyTorch's top-2 logit gap is below the
// tolerance — and at least one token per prompt on average must be compared, so the test cannot pass vacuously.
describe('parity of the trained demo model (base-chat) with transformers', () => {
  let reference: Reference;
  let model: ChatModelRuntime;

  beforeAll(async () => {
    reference = requireBuiltModels();
    model = await loadChatModel(chatModelDirectory, { greedyInGraph: 'never' }); // the host loop; in-graph below
  });

  const expectDecidedPrefixes = (results: GenerationResult[], tolerance: number) =>
    expectDecidedPrefixesOf(reference, results, tolerance);

  const requestsOf = (reference: Reference) =>
    reference.generations.map((generation) => ({ messages: generation.messages }));

  it('greedy generation equals transformers token for token, alone and as a left-padded batch', async () => {
    const alone = [];
    for (const request of requestsOf(reference)) {
      alone.push(await model.generate({ ...request, maxNewTokens: reference.max_new_tokens }));
    }
    alone.forEach((result, index) => {
      expect(result.promptTokens).toBe(reference.generations[index].prompt_ids.length);
    });
    expectDecidedPrefixes(alone, 1e-2);
    const batched = await model.generate(requestsOf(reference), { maxNewTokens: reference.max_new_tokens });
    expectDecidedPrefixes(batched, 1e-2);
  });

  it('in-graph greedy decoding (the fused decoder) equals transformers, alone and batched', async () => {
    // The default on CPU too: it is the faster decoder there (bench/inference-generation.ts --lengths natural).
    const inGraph = await loadChatModel(chatModelDirectory);
    expect(inGraph.decodesInGraph).toBe(true);
    const alone = [];
    for (const request of requestsOf(reference)) {
      alone.push(await inGraph.generate({ ...request, maxNewTokens: reference.max_new_tokens }));
    }
    expectDecidedPrefixes(alone, 1e-2);
    expectDecidedPrefixes(
      await inGraph.generate(requestsOf(reference), { maxNewTokens: reference.max_new_tokens }),
      1e-2,
    );
  });

  it('the float16 export follows transformers up to near-ties at half precision, host loop and in-graph', async () => {
    const options = { maxNewTokens: reference.max_new_tokens };
    // Four times the largest logit difference the export measured against PyTorch (weft-model.json), at least 0.1.
    const manifest = JSON.parse(readFileSync(path.join(chatModelFloat16Directory, 'weft-model.json'), 'utf8')) as {
      export_check: { max_abs_logit_diff: number };
    };
    const float16Tolerance = Math.max(0.1, 4 * manifest.export_check.max_abs_logit_diff);
    for (const greedyInGraph of ['never', 'always'] as const) {
      const half = await loadChatModel(chatModelFloat16Directory, { greedyInGraph });
      expectDecidedPrefixes(await half.generate(requestsOf(reference), options), float16Tolerance);
    }
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
    const inGraph = await loadChatModel(chatModelDirectory, { greedyInGraph: 'always' });
    expect((await inGraph.generate({ messages, ...parameters })).tokenIds).toEqual(first.tokenIds);
  });
});
