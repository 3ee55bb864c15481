/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
/**
 * WEFT_CPU_WEIGHTS=int8: greedy rows on CPU decode with the folder's generate_greedy.int8.onnx (8-bit MatMul weights,
 * trainer/quantize_int8.py) under the same generation semantics; everything else keeps float32; a folder without the
 * int8 graph decodes in float32 and says so. On the fixture model, whose outputs are fixed by construction with wide
 * margins, 8-bit weights must not change a single token.
 */
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../lib/config/config';
import { greedyInt8LoopFileName, loadChatModel } from '../../lib/inference';
import { chatModelResources, closeRagInferenceResources } from '../../lib/rag/inference-resources';
import { fixtureModelDirectory, requireFixtureModel } from './built-models';

const chat = { messages: [{ role: 'user' as const, content: 'Spell the alphabet.' }] };
const alphabet = 'abcdefghijklmnopqrstuvwxyz';

describe('8-bit CPU weights (WEFT_CPU_WEIGHTS=int8)', () => {
  beforeAll(() => {
    requireFixtureModel();
  });
  afterAll(async () => {
    await closeRagInferenceResources();
  });

  it('is float32 by default; int8 is accepted; other words are refused naming the variable and its choices', () => {
    expect(parseConfig({}).cpuWeights).toBe('float32');
    expect(parseConfig({ WEFT_CPU_WEIGHTS: 'int8' }).cpuWeights).toBe('int8');
    expect(() => parseConfig({ WEFT_CPU_WEIGHTS: 'int4' })).toThrow(ConfigError);
    expect(() => parseConfig({ WEFT_CPU_WEIGHTS: 'int4' })).toThrow(/WEFT_CPU_WEIGHTS.*float32.*int8/s);
  });

  it('greedy rows decode with the int8 graph: same tokens, budget, stop token and stop string as float32', async () => {
    const model = await loadChatModel(fixtureModelDirectory, { cpuWeights: 'int8' });
    expect([model.decodesInGraph, model.greedyWeights]).toEqual([true, 'int8']);
    const reply = await model.generate({ ...chat, maxNewTokens: 30 });
    expect([reply.text, reply.completionTokens, reply.finishReason]).toEqual([`${alphabet} abc`, 30, 'length']);
    const countdown = await model.generate({ prompt: 'count 3', maxNewTokens: 10 });
    expect([countdown.text, countdown.completionTokens, countdown.finishReason]).toEqual(['210', 4, 'stop']);
    const stopped = await model.generate({ ...chat, maxNewTokens: 30, stopStrings: ['fgh'] });
    expect([stopped.text, stopped.finishReason]).toEqual(['abcde', 'stop']);
    const batch = await model.generate([
      { ...chat, maxNewTokens: 5 },
      { prompt: 'count 5', maxNewTokens: 10 },
    ]);
    expect(batch.map((result) => result.text)).toEqual(['abcde', '43210']);
  });

  it('sampled and streamed rows keep the float32 host loop: the same tokens as a float32 model', async () => {
    const int8 = await loadChatModel(fixtureModelDirectory, { cpuWeights: 'int8' });
    const float32 = await loadChatModel(fixtureModelDirectory);
    const sampled = { ...chat, temperature: 1.5, seed: 7, maxNewTokens: 12 };
    expect((await int8.generate(sampled)).tokenIds).toEqual((await float32.generate(sampled)).tokenIds);
    const streamed: string[] = [];
    const result = await int8.generate({ ...chat, maxNewTokens: 4, onToken: (event) => streamed.push(event.text) });
    expect([result.text, streamed.join('')]).toEqual(['abcd', 'abcd']);
  });

  it('a folder exported without the int8 graph decodes in float32 and warns, naming the setting and the file', async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'weft-no-int8-'));
    try {
      for (const name of readdirSync(fixtureModelDirectory)) {
        if (name !== greedyInt8LoopFileName && !name.startsWith('weights.int8.')) {
          copyFileSync(path.join(fixtureModelDirectory, name), path.join(folder, name));
        }
      }
      const warnings: string[] = [];
      const model = await loadChatModel(folder, {
        cpuWeights: 'int8',
        logger: { warn: (message: string) => warnings.push(message) },
      });
      expect([model.decodesInGraph, model.greedyWeights]).toEqual([true, 'float32']);
      expect(warnings.join('\n')).toMatch(/WEFT_CPU_WEIGHTS=int8.*generate_greedy\.int8\.onnx.*float32/s);
      expect((await model.generate({ ...chat, maxNewTokens: 3 })).text).toBe('abc');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('reaches worker-loaded chat models through their placement', async () => {
    const placement = { executionProvider: 'cpu' as const, deviceId: 0 };
    const float32 = await chatModelResources(fixtureModelDirectory, placement);
    const int8 = await chatModelResources(fixtureModelDirectory, { ...placement, cpuWeights: 'int8' });
    expect([float32.runtime.greedyWeights, int8.runtime.greedyWeights]).toEqual(['float32', 'int8']);
  });
});
