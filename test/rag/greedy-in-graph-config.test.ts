/**
 * WEFT_GREEDY_IN_GRAPH reaches the chat models workers load: `never` keeps the step-by-step loop (one copy of the
 * weights), the default decodes greedy rows inside onnxruntime; a wrong value is refused naming the variable.
 */
import { ConfigError, parseConfig } from '../../lib/config/config';
import { chatModelResources, closeRagInferenceResources } from '../../lib/rag/inference-resources';
import { chatModelDirectory, requireBuiltModels } from '../inference/built-models';

describe('WEFT_GREEDY_IN_GRAPH', () => {
  beforeAll(() => {
    requireBuiltModels();
  });
  afterAll(async () => {
    await closeRagInferenceResources();
  });

  it('is auto by default and refuses other words, naming the variable and its choices', () => {
    expect(parseConfig({}).greedyInGraph).toBe('auto');
    expect(parseConfig({ WEFT_GREEDY_IN_GRAPH: 'never' }).greedyInGraph).toBe('never');
    expect(() => parseConfig({ WEFT_GREEDY_IN_GRAPH: 'sometimes' })).toThrow(ConfigError);
    expect(() => parseConfig({ WEFT_GREEDY_IN_GRAPH: 'sometimes' })).toThrow(
      /WEFT_GREEDY_IN_GRAPH.*auto.*always.*never/s,
    );
  });

  it('decides which decoder a worker-loaded chat model uses, with the same tokens either way', async () => {
    const placement = { executionProvider: 'cpu' as const, deviceId: 0 };
    const inGraph = await chatModelResources(chatModelDirectory, placement);
    const hostLoop = await chatModelResources(chatModelDirectory, { ...placement, greedyInGraph: 'never' });
    expect([inGraph.runtime.decodesInGraph, hostLoop.runtime.decodesInGraph]).toEqual([true, false]);
    const request = { messages: [{ role: 'user' as const, content: 'What raises sea level?' }], maxNewTokens: 12 };
    const [a, b] = [await inGraph.runtime.generate(request), await hostLoop.runtime.generate(request)];
    expect(a.tokenIds).toEqual(b.tokenIds);
  });
});
