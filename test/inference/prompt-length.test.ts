import { PromptTooLongError, loadChatModel, loadEmbeddingModel } from '../../lib/inference';
import { chatModelDirectory, embeddingModelDirectory } from './built-models';

describe('input too long for the model (finding 5)', () => {
  it('a megabyte prompt is refused by its length before tokenising; the embedder cuts it to its window', async () => {
    const megabyte = 'climate '.repeat(128 * 1024);
    const model = await loadChatModel(chatModelDirectory);
    const refusal = await model.generate({ messages: [{ role: 'user', content: megabyte }] }).catch((error) => error);
    expect(refusal).toBeInstanceOf(PromptTooLongError);
    expect((refusal as Error).message).toMatch(/the prompt has 1048576 characters; the model's \d+ positions hold/);
    const embedder = await loadEmbeddingModel(embeddingModelDirectory);
    const [long, short] = await embedder.embed([megabyte, 'climate '.repeat(2048)]);
    // Both are cut to the model's window: the same leading tokens give the same vector.
    expect(Array.from(long)).toEqual(Array.from(short));
  });
});
