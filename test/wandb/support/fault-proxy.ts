import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy does with one request: forward it, answer it itself, or hold it until released. */
export type FaultDecision =
  | { action: 'forward' }
  | { action: 'answer'; status: number; body: unknown }
  | { action: 'hold'; released: Promise<void> };

export interface FaultRequest {
  method: string;
  path: string;
  /** The GraphQL operation name (`WeftLinkArtifact`, …) of a `/graphql` POST, else undefined. */
  operation: string | undefined;
  /** Its variables (a `/graphql` POST), else undefined. */
  variables: Record<string, unknown> | undefined;
}

/**
 * A fault injector in front of a real `weft serve` (the W&B server of these tests): it forwards every request
 * unchanged (Host included, so the URLs the server hands out point back through it) unless `decide` says to answer
 * with an error of its own (a W&B 403) or to hold the request (to kill a worker while its write is in flight).
 * With the upstream stopped, requests fail as a connection to a stopped W&B would (the socket is closed).
 * Not a fake W&B: every write that gets through is performed by the real server.
 */
export class FaultProxy {
  readonly url: string;
  decide: (request: FaultRequest) => FaultDecision = () => ({ action: 'forward' });
  /** Requests seen, in order: `<METHOD> <path> [<operation>]`. */
  readonly seen: string[] = [];

  private constructor(
    private readonly server: http.Server,
    public upstream: string,
  ) {
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(upstream: string): Promise<FaultProxy> {
    const holder: { proxy?: FaultProxy } = {};
    const server = http.createServer((request, response) => void holder.proxy!.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.proxy = new FaultProxy(server, upstream);
    return holder.proxy;
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    let operation: string | undefined;
    let variables: Record<string, unknown> | undefined;
    if (request.url === '/graphql') {
      try {
        const parsed = JSON.parse(body.toString('utf8')) as {
          query?: string;
          operationName?: string;
          variables?: Record<string, unknown>;
        };
        operation = parsed.operationName ?? /(?:query|mutation)\s+(\w+)/.exec(parsed.query ?? '')?.[1];
        variables = parsed.variables;
      } catch {
        operation = undefined;
      }
    }
    const path = request.url ?? '/';
    this.seen.push(`${request.method} ${path.split('?')[0]}${operation ? ` ${operation}` : ''}`);
    const decision = this.decide({ method: request.method ?? 'GET', path, operation, variables });
    if (decision.action === 'answer') {
      response.writeHead(decision.status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(decision.body));
      return;
    }
    if (decision.action === 'hold') await decision.released;
    const target = new URL(path, this.upstream);
    const forwarded = http.request(target, { method: request.method, headers: request.headers }, (upstreamResponse) => {
      response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
      upstreamResponse.pipe(response);
    });
    // The W&B server is down: the client sees its connection closed, as with a stopped server.
    forwarded.on('error', () => response.socket?.destroy());
    forwarded.end(body);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
