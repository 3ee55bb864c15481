/**
 * WEFT_ENGINE / WEFT_TORCH_COMPILE reach the chat models a gpu worker loads: with `torch`, the worker's micro-batcher
 * answers from the PyTorch engine process, with onnxruntime's tokens; wrong values are refused naming the variable.
 */
import { ConfigError, parseConfig } from '../../lib/config/config';
import { chatModelResources, closeRagInferenceResources } from '../../lib/rag/inference-resources';
import type { ModelCache } from '../../lib/rag/model-cache';
import { RagModelSessions } from '../../lib/rag/model-sessions';
import { chatModelDirectory, pythonPath, requireBuiltModels } from '../inference/built-models';

describe('WEFT_ENGINE', () => {
  beforeAll(() => {
    requireBuiltModels();
  });
  afterAll(async () => {
    await closeRagInferenceResources();
  });

  it('is onnxruntime by default and refuses other words, naming the variable and its choices', () => {
    expect([parseConfig({}).engine, parseConfig({}).torchCompile]).toEqual(['onnxruntime', 'triton']);
    expect(() => parseConfig({ WEFT_ENGINE: 'vllm' })).toThrow(ConfigError);
    expect(() => parseConfig({ WEFT_ENGINE: 'vllm' })).toThrow(/WEFT_ENGINE.*onnxruntime.*torch/s);
    expect(() => parseConfig({ WEFT_TORCH_COMPILE: 'max-autotune' })).toThrow(/WEFT_TORCH_COMPILE/);
  });

  it('torch: the worker-loaded model decodes in the engine, through the micro-batcher, with the same tokens', async () => {
    const config = parseConfig({ WEFT_ENGINE: 'torch', WEFT_PYTHON: pythonPath, WEFT_TORCH_COMPILE: 'off' });
    // placementFor reads only the configuration; no model is materialised here.
    const placement = new RagModelSessions(undefined as unknown as ModelCache, config, undefined).placementFor('auto');
    expect(placement).toMatchObject({ engine: 'torch', python: pythonPath, torchCompile: 'off' });
    const engine = await chatModelResources(chatModelDirectory, placement);
    const onnx = await chatModelResources(chatModelDirectory, { executionProvider: 'cpu', deviceId: 0 });
    expect([engine.runtime.decodeEngine, onnx.runtime.decodeEngine]).toEqual(['torch', 'onnxruntime']);
    const requests = ['What raises sea level?', 'What is the Kyoto Protocol?'].map((content) => ({
      messages: [{ role: 'user' as const, content }],
      maxNewTokens: 12,
    }));
    const fromEngine = await Promise.all(requests.map((request) => engine.batcher.generate(request)));
    const fromOnnx = await Promise.all(requests.map((request) => onnx.batcher.generate(request)));
    expect(fromEngine.map((result) => result.tokenIds)).toEqual(fromOnnx.map((result) => result.tokenIds));
    expect(fromEngine.map((result) => result.timings.batchSize)).toEqual([2, 2]);
  }, 120_000);
});
