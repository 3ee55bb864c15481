/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import { type EmbeddingModelRuntime, loadEmbeddingModel } from '../../lib/inference';
import { type Reference, cosineSimilarity, embeddingModelDirectory, requireBuiltModels } from './built-models';

describe('sentence embeddings', () => {
  let reference: Reference;
  let model: EmbeddingModelRuntime;

  beforeAll(async () => {
    reference = requireBuiltModels();
    model = await loadEmbeddingModel(embeddingModelDirectory);
  });

  it('match sentence-transformers (cosine ≥ 0.999) and are unit length', async () => {
    const vectors = await model.embed(reference.embeddings.map((row) => row.text));
    expect(model.dimension).toBe(384);
    vectors.forEach((vector, index) => {
      expect(vector).toHaveLength(384);
      expect(cosineSimilarity(vector, reference.embeddings[index].embedding)).toBeGreaterThanOrEqual(0.999);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    });
  });

  it('a text embeds the same alone as in a padded batch', async () => {
    const texts = reference.embeddings.map((row) => row.text);
    const batched = await model.embed(texts);
    for (const [index, text] of texts.entries()) {
      const [alone] = await model.embed([text]);
      expect(cosineSimilarity(alone, batched[index])).toBeGreaterThan(0.99999);
    }
  });

  it('ranks a relevant passage above an unrelated one', async () => {
    const [question, relevant, unrelated] = await model.embed([
      'Which gases trap heat in the atmosphere?',
      'Greenhouse gases such as carbon dioxide and methane absorb infrared radiation.',
      'The recipe needs two eggs and a cup of flour.',
    ]);
    expect(cosineSimilarity(question, relevant)).toBeGreaterThan(cosineSimilarity(question, unrelated));
  });
});
