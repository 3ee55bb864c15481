import type { CallInput } from '../lineage';

/**
 * Mirrors weft's calls to an external Weave trace server without putting the host process at risk.
 *
 * Why not the weave SDK in-process: its batch uploader (WeaveClient.processBatch in weave 0.11) counts every
 * failed upload and calls `process.exit(1)` once more than 10 have failed — a trace server that is down for a
 * few minutes would kill a Temporal worker. This forwarder is a bounded in-memory queue drained by plain HTTP
 * with capped exponential backoff: it never exits, never throws into its caller, and every call it could not
 * deliver is counted and reported (stats(), onLoss, close()'s report) — nothing is dropped silently.
 */

export interface TraceForwarderOptions {
  /** Base URL of the trace server (what WF_TRACE_SERVER_URL would be for the SDK), e.g. `http://host:6345`. */
  url: string;
  /** Sent as the W&B API key is: HTTP basic auth with user `api`. */
  apiKey: string;
  /** Most start/end items held while the server is unreachable; past it the oldest are dropped and counted. Default 50,000. */
  maxQueuedItems?: number;
  /** Items per `call/upsert_batch` request. Default 200. */
  batchSize?: number;
  /** First retry delay after a failed upload, doubled per consecutive failure up to maxRetryDelayMilliseconds. Default 250 ms. */
  retryDelayMilliseconds?: number;
  /** Longest wait between retries. Default 30,000 ms. */
  maxRetryDelayMilliseconds?: number;
  /** Time limit of one upload request. Default 15,000 ms. */
  requestTimeoutMilliseconds?: number;
  /** Told about every loss as it happens (count and why); exceptions it throws are ignored. */
  onLoss?: (loss: TraceLoss) => void;
  /** The fetch implementation (tests, proxies). Default the global fetch. */
  fetch?: typeof fetch;
}

export interface TraceLoss {
  /** Start/end items lost in this event. */
  items: number;
  reason: 'queue-full' | 'rejected' | 'closed';
  /** The server's answer or the last connection error. */
  detail: string;
}

export interface TraceForwarderStats {
  /** Items waiting (including the batch in flight). */
  queued: number;
  /** Items the server acknowledged. */
  delivered: number;
  /** Items lost, by reason; `lost` is their sum. */
  lost: number;
  lostByReason: Record<TraceLoss['reason'], number>;
  /** Upload attempts that failed and will be retried (server down, 5xx, 429, timeouts). */
  failedAttempts: number;
  /** The most recent failure, for logs and health checks. */
  lastError: string | null;
}

/** Any other JSON write to the trace server (obj/create, table/create, feedback/create), sent on its own, in queue order. */
interface RequestItem {
  mode: 'request';
  path: string;
  body: unknown;
}

type UpsertItem =
  { mode: 'start'; req: { start: Record<string, unknown> } } | { mode: 'end'; req: { end: Record<string, unknown> } };

/** Statuses a retry cannot fix: the batch is dropped and counted as rejected. */
function isPermanentFailure(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/** The start and end items the SDK would send for a finished (or running) call. */
export function callUpsertItems(call: CallInput, defaultProjectId: string): UpsertItem[] {
  const projectId =
    call.entity !== undefined && call.project !== undefined ? `${call.entity}/${call.project}` : defaultProjectId;
  const items: UpsertItem[] = [
    {
      mode: 'start',
      req: {
        start: {
          project_id: projectId,
          id: call.id,
          op_name: call.opName,
          display_name: call.displayName ?? null,
          trace_id: call.traceId,
          parent_id: call.parentId ?? null,
          started_at: call.startedAt,
          attributes: call.attributes ?? {},
          inputs: call.inputs ?? {},
        },
      },
    },
  ];
  if (call.endedAt !== undefined) {
    items.push({
      mode: 'end',
      req: {
        end: {
          project_id: projectId,
          id: call.id,
          ended_at: call.endedAt,
          exception: call.exception ?? null,
          output: call.output ?? null,
          summary: call.summary ?? {},
        },
      },
    });
  }
  return items;
}

export class TraceForwarder {
  private readonly queue: (UpsertItem | RequestItem)[] = [];
  private readonly options: Required<Omit<TraceForwarderOptions, 'onLoss' | 'fetch'>> &
    Pick<TraceForwarderOptions, 'onLoss'>;
  private readonly fetchImplementation: typeof fetch;
  private readonly authorization: string;
  private stats_: TraceForwarderStats = {
    queued: 0,
    delivered: 0,
    lost: 0,
    lostByReason: { 'queue-full': 0, rejected: 0, closed: 0 },
    failedAttempts: 0,
    lastError: null,
  };
  private consecutiveFailures = 0;
  private draining: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly idleWaiters = new Set<() => void>();

  constructor(options: TraceForwarderOptions) {
    this.options = {
      url: options.url.replace(/\/+$/, ''),
      apiKey: options.apiKey,
      maxQueuedItems: options.maxQueuedItems ?? 50_000,
      batchSize: options.batchSize ?? 200,
      retryDelayMilliseconds: options.retryDelayMilliseconds ?? 250,
      maxRetryDelayMilliseconds: options.maxRetryDelayMilliseconds ?? 30_000,
      requestTimeoutMilliseconds: options.requestTimeoutMilliseconds ?? 15_000,
      onLoss: options.onLoss,
    };
    this.fetchImplementation = options.fetch ?? fetch;
    this.authorization = `Basic ${Buffer.from(`api:${options.apiKey}`).toString('base64')}`;
  }

  /** Queues a call (its start, and its end when it has one) for upload; returns at once and never throws. */
  forward(call: CallInput, defaultProjectId = 'weft/rag-demo'): void {
    this.enqueue(callUpsertItems(call, defaultProjectId));
  }

  /**
   * Queues an object version (`obj/create`), e.g. an op or Evaluation the mirrored calls name, so their refs
   * resolve on the other server too. Queue order is kept: queue objects before the calls that name them.
   */
  forwardObject(projectId: string, objectId: string, value: unknown): void {
    this.forwardRequest('/obj/create', { obj: { project_id: projectId, object_id: objectId, val: value } });
  }

  /** Queues any other JSON write of the trace-server API (`/table/create`, `/feedback/create`, …), same rules. */
  forwardRequest(path: string, body: unknown): void {
    this.enqueue([{ mode: 'request', path: path.startsWith('/') ? path : `/${path}`, body }]);
  }

  /** Queues start/end items as they would go to `call/upsert_batch`. */
  enqueue(items: (UpsertItem | RequestItem)[]): void {
    if (this.closed) {
      this.recordLoss({
        items: items.length,
        reason: 'closed',
        detail: 'the forwarder was closed before these items were queued',
      });
      return;
    }
    this.queue.push(...items);
    const overflow = this.queue.length - this.options.maxQueuedItems;
    if (overflow > 0) {
      // The oldest go first: while the server is down, the newest traces are the ones worth keeping.
      this.queue.splice(0, overflow);
      this.recordLoss({
        items: overflow,
        reason: 'queue-full',
        detail: `more than ${this.options.maxQueuedItems} items waited for ${this.options.url}${this.stats_.lastError ? ` (last error: ${this.stats_.lastError})` : ''}`,
      });
    }
    this.schedule(0);
  }

  /** Counters so far; `queued` is what a shutdown now would lose. */
  stats(): TraceForwarderStats {
    return { ...this.stats_, lostByReason: { ...this.stats_.lostByReason }, queued: this.queue.length };
  }

  /** Resolves when the queue is empty or after `timeoutMilliseconds`, with the stats then; never rejects. */
  async flush(timeoutMilliseconds = 30_000): Promise<TraceForwarderStats> {
    if (this.queue.length > 0) {
      this.schedule(0);
      await new Promise<void>((resolve) => {
        const timeout = setTimeout(done, timeoutMilliseconds);
        function done(): void {
          clearTimeout(timeout);
          resolve();
        }
        this.idleWaiters.add(done);
        timeout.unref?.();
      });
    }
    return this.stats();
  }

  /** Flushes for up to `timeoutMilliseconds`, stops, and reports what was delivered and what was lost (counted as `closed`). */
  async close(timeoutMilliseconds = 30_000): Promise<TraceForwarderStats> {
    await this.flush(timeoutMilliseconds);
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // An upload in flight finishes first (bounded by the request timeout), so no item is counted both delivered and lost.
    if (this.draining) await this.draining;
    if (this.queue.length > 0) {
      const left = this.queue.length;
      this.queue.length = 0;
      this.recordLoss({
        items: left,
        reason: 'closed',
        detail: `${left} items were still waiting for ${this.options.url} at shutdown${this.stats_.lastError ? ` (last error: ${this.stats_.lastError})` : ''}`,
      });
    }
    this.wakeIdleWaiters();
    return this.stats();
  }

  private recordLoss(loss: TraceLoss): void {
    this.stats_.lost += loss.items;
    this.stats_.lostByReason[loss.reason] += loss.items;
    try {
      this.options.onLoss?.(loss);
    } catch {
      // A reporting hook must not break forwarding.
    }
  }

  private wakeIdleWaiters(): void {
    for (const waiter of [...this.idleWaiters]) {
      this.idleWaiters.delete(waiter);
      waiter();
    }
  }

  private schedule(delayMilliseconds: number): void {
    if (this.closed || this.draining || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.draining = this.drain().finally(() => {
        this.draining = null;
        if (this.queue.length === 0) this.wakeIdleWaiters();
        else if (!this.closed) this.schedule(this.retryDelay());
      });
    }, delayMilliseconds);
    // The forwarder alone does not keep a process alive; flush() and close() wait explicitly.
    this.timer.unref?.();
  }

  private retryDelay(): number {
    if (this.consecutiveFailures === 0) return 0;
    return Math.min(
      this.options.retryDelayMilliseconds * 2 ** (this.consecutiveFailures - 1),
      this.options.maxRetryDelayMilliseconds,
    );
  }

  /** Uploads batches until the queue is empty or an upload fails (the caller schedules the retry). */
  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const head = this.queue[0]!;
      // A request goes alone; call items go together, up to batchSize, until the next request.
      let batch: (UpsertItem | RequestItem)[] = [head];
      if (head.mode !== 'request') {
        const end = this.queue.findIndex((item, index) => index >= this.options.batchSize || item.mode === 'request');
        batch = this.queue.slice(0, end === -1 ? this.options.batchSize : end);
      }
      const path = head.mode === 'request' ? head.path : '/call/upsert_batch';
      const body = head.mode === 'request' ? head.body : { batch };
      let outcome: { ok: true } | { ok: false; permanent: boolean; detail: string };
      try {
        const response = await this.fetchImplementation(`${this.options.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: this.authorization },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.requestTimeoutMilliseconds),
        });
        const text = await response.text().catch(() => '');
        outcome = response.ok
          ? { ok: true }
          : {
              ok: false,
              permanent: isPermanentFailure(response.status),
              detail: `HTTP ${response.status} from ${this.options.url}${path}: ${text.slice(0, 300)}`,
            };
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause?.code;
        outcome = {
          ok: false,
          permanent: false,
          detail: `${this.options.url} unreachable: ${(error as Error).message}${cause ? ` (${cause})` : ''}`,
        };
      }
      if (outcome.ok) {
        this.queue.splice(0, batch.length);
        this.stats_.delivered += batch.length;
        this.consecutiveFailures = 0;
        continue;
      }
      this.stats_.lastError = outcome.detail;
      if (outcome.permanent) {
        // Resending the same batch gets the same answer (bad token, malformed call): drop it, count it, go on.
        this.queue.splice(0, batch.length);
        this.recordLoss({ items: batch.length, reason: 'rejected', detail: outcome.detail });
        continue;
      }
      this.stats_.failedAttempts += 1;
      this.consecutiveFailures += 1;
      return;
    }
  }
}
