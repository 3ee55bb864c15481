import type { AdmittedRequest } from '../../lib/inference/chat-model';
import { EmptyPromptError } from '../../lib/inference/errors';
import { MicroBatcherClosedError, createMicroBatcher } from '../../lib/inference/micro-batcher';

/**
 * A stand-in model that echoes prompts upper-cased. Each pass admits what the batcher hands over and finishes it,
 * recording which prompts shared the pass.
 */
function recordingGenerator() {
  const batches: string[][] = [];
  return {
    batches,
    async generateContinuously(
      next: (capacity: number) => AdmittedRequest[],
      options: { maxBatchSize?: number } = {},
    ): Promise<void> {
      for (;;) {
        const admitted = next(options.maxBatchSize ?? 8);
        if (admitted.length === 0) return;
        batches.push(admitted.map(({ request }) => request.prompt ?? ''));
        await new Promise((resolve) => setImmediate(resolve));
        for (const { request, resolve, reject } of admitted) {
          if (!request.prompt) {
            reject(new EmptyPromptError(0));
            continue;
          }
          request.onToken?.({ requestIndex: 5, tokenId: 7, text: request.prompt.toUpperCase() });
          resolve({
            text: request.prompt.toUpperCase(),
            tokenIds: [7],
            promptTokens: 1,
            completionTokens: 1,
            finishReason: 'stop',
            timings: { batchSize: admitted.length, prefillMs: 0, decodeMs: 0, totalMs: 0, queueMs: 0 },
          });
        }
      }
    },
  };
}

describe('micro-batcher', () => {
  it('concurrent calls share one batch and each gets its own result', async () => {
    const generator = recordingGenerator();
    const batcher = createMicroBatcher(generator, { maxBatchSize: 8, maxWaitMs: 20 });
    const results = await Promise.all(['a', 'b', 'c'].map((prompt) => batcher.generate({ prompt })));
    expect(results.map((result) => result.text)).toEqual(['A', 'B', 'C']);
    expect(generator.batches).toEqual([['a', 'b', 'c']]);
    expect(results.every((result) => result.timings.batchSize === 3)).toBe(true);
  });

  it('never puts more than maxBatchSize requests in one forward pass', async () => {
    const generator = recordingGenerator();
    const batcher = createMicroBatcher(generator, { maxBatchSize: 2, maxWaitMs: 20 });
    const prompts = ['a', 'b', 'c', 'd', 'e'];
    const results = await Promise.all(prompts.map((prompt) => batcher.generate({ prompt })));
    expect(results.map((result) => result.text)).toEqual(['A', 'B', 'C', 'D', 'E']);
    expect(generator.batches.map((batch) => batch.length)).toEqual([2, 2, 1]);
  });

  it('a bad request fails alone and its neighbours still get results', async () => {
    const batcher = createMicroBatcher(recordingGenerator(), { maxBatchSize: 4, maxWaitMs: 20 });
    const outcomes = await Promise.allSettled(['a', '', 'c'].map((prompt) => batcher.generate({ prompt })));
    expect(outcomes[0]).toMatchObject({ status: 'fulfilled', value: { text: 'A' } });
    expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: expect.any(EmptyPromptError) });
    expect(outcomes[2]).toMatchObject({ status: 'fulfilled', value: { text: 'C' } });
  });

  it('streams tokens to each caller as request 0 of its own call', async () => {
    const batcher = createMicroBatcher(recordingGenerator(), { maxWaitMs: 10 });
    const events: Array<{ requestIndex: number; text: string }> = [];
    await Promise.all([
      batcher.generate({ prompt: 'x' }),
      batcher.generate({ prompt: 'y', onToken: (event) => events.push(event) }),
    ]);
    expect(events).toEqual([{ requestIndex: 0, tokenId: 7, text: 'Y' }]);
  });

  it('finishes queued work on close and refuses new requests after', async () => {
    const generator = recordingGenerator();
    const batcher = createMicroBatcher(generator, { maxWaitMs: 1000 });
    const queued = batcher.generate({ prompt: 'late' });
    await batcher.close();
    await expect(queued).resolves.toMatchObject({ text: 'LATE' });
    await expect(batcher.generate({ prompt: 'after' })).rejects.toBeInstanceOf(MicroBatcherClosedError);
    expect(batcher.pending).toBe(0);
  });
});
