import type { AdmittedRequest, GenerationRequest, GenerationResult, TokenEvent } from './chat-model';

/** What the batcher drives: a model that decodes requests as they are handed over. ChatModelRuntime is one. */
export interface ContinuousGenerator {
  generateContinuously(
    next: (capacity: number) => AdmittedRequest[],
    options?: { maxBatchSize?: number },
  ): Promise<void>;
}

export interface MicroBatcherOptions {
  /** Most requests decoding together in one forward pass. Default 8. */
  maxBatchSize?: number;
  /**
   * How long the first request of an idle batcher waits for company before decoding starts, in milliseconds.
   * Default 5. Requests that arrive while the batcher decodes join the running batch at its next forward pass.
   */
  maxWaitMs?: number;
}

export interface MicroBatcher {
  /** Resolves with this request's result; concurrent calls share forward passes. */
  generate(request: GenerationRequest): Promise<GenerationResult>;
  /** Requests queued or decoding. */
  readonly pending: number;
  /** Finishes what is queued, then refuses new requests. */
  close(): Promise<void>;
}

interface QueuedRequest {
  request: GenerationRequest;
  enqueuedAt: number;
  resolve(result: GenerationResult): void;
  reject(error: unknown): void;
}

export class MicroBatcherClosedError extends Error {
  readonly retryable = true;
  readonly type = 'MicroBatcherClosedError';
  constructor() {
    super('The inference micro-batcher is closed (the worker is shutting down); retry on another worker.');
    this.name = 'MicroBatcherClosedError';
  }
}

/**
 * Gathers concurrent generate() calls of one process (the gpu worker's predict activities) into shared forward
 * passes: continuous batching, bounded by maxBatchSize rows. A request arriving mid-batch joins at the next pass
 * instead of waiting for the longest completion to finish; one decoding loop runs at a time, since on one device
 * parallel loops only compete.
 */
export function createMicroBatcher(generator: ContinuousGenerator, options: MicroBatcherOptions = {}): MicroBatcher {
  const maxBatchSize = options.maxBatchSize ?? 8;
  const maxWaitMs = options.maxWaitMs ?? 5;
  const queue: QueuedRequest[] = [];
  /** Handed to the generator and not yet settled: failed together if the loop itself breaks. */
  const admitted = new Set<QueuedRequest>();
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function admit(capacity: number): AdmittedRequest[] {
    const admittedAt = performance.now();
    return queue.splice(0, capacity).map((queued) => {
      admitted.add(queued);
      const callerStream = queued.request.onToken;
      return {
        // Each caller sees its own request as index 0 in stream events, whatever its row in the batch.
        request: callerStream
          ? { ...queued.request, onToken: (event: TokenEvent) => callerStream({ ...event, requestIndex: 0 }) }
          : queued.request,
        resolve(result) {
          admitted.delete(queued);
          queued.resolve({ ...result, timings: { ...result.timings, queueMs: admittedAt - queued.enqueuedAt } });
        },
        reject(error) {
          admitted.delete(queued);
          queued.reject(error);
        },
      };
    });
  }

  function dispatch(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (running || queue.length === 0) return;
    running = generator
      .generateContinuously(admit, { maxBatchSize })
      .catch((error: unknown) => {
        for (const queued of admitted) queued.reject(error);
        admitted.clear();
      })
      .finally(() => {
        running = undefined;
        dispatch();
      });
  }

  return {
    get pending() {
      return queue.length + admitted.size;
    },
    generate(request) {
      if (closed) return Promise.reject(new MicroBatcherClosedError());
      return new Promise<GenerationResult>((resolve, reject) => {
        queue.push({ request, enqueuedAt: performance.now(), resolve, reject });
        // A running loop picks the request up at its next forward pass.
        if (running) return;
        if (queue.length >= maxBatchSize) dispatch();
        else if (!timer) timer = setTimeout(dispatch, maxWaitMs);
      });
    },
    async close() {
      closed = true;
      dispatch();
      while (running) await running;
    },
  };
}
