import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { WandbRemoteConfig } from './config';
import { WandbAuthError, WandbRequestError, WandbUnavailableError } from './errors';

/** A request body: JSON, bytes, or a file streamed from disk (model weights are not read into memory). */
export type RequestBody = { json: unknown } | { bytes: Buffer } | { file: string; size: number } | { form: FormData };

export interface WandbClientOptions {
  /** Time limit of one JSON request. Default 60 s. */
  requestTimeoutMilliseconds?: number;
  /** Time limit of one file upload. Default 30 min. */
  uploadTimeoutMilliseconds?: number;
  fetch?: typeof fetch;
}

/**
 * HTTP to a W&B server as the wandb/weave SDKs talk to it: GraphQL at `/graphql`, run files at `/files/…`, uploads
 * to the URLs the server hands out, the Weave trace server. Every failure becomes one of three errors: retryable
 * (unreachable, timeout, 408/429/5xx), an auth error naming the key and the target (401/403), or a request error.
 */
export class WandbClient {
  private readonly authorization: string;
  private readonly fetchImplementation: typeof fetch;
  private readonly requestTimeout: number;
  private readonly uploadTimeout: number;

  constructor(
    readonly config: WandbRemoteConfig,
    options: WandbClientOptions = {},
  ) {
    this.authorization = `Basic ${Buffer.from(`api:${config.apiKey}`).toString('base64')}`;
    this.fetchImplementation = options.fetch ?? fetch;
    this.requestTimeout = options.requestTimeoutMilliseconds ?? 60_000;
    this.uploadTimeout = options.uploadTimeoutMilliseconds ?? 30 * 60_000;
  }

  /** One GraphQL operation; `what` says what it does for the error messages (e.g. "link … into …"). */
  async graphql<T>(what: string, query: string, variables: Record<string, unknown>): Promise<T> {
    const response = await this.send(what, `${this.config.baseUrl}/graphql`, 'POST', { json: { query, variables } });
    const body = (await this.readJson(what, response)) as {
      data?: T;
      errors?: { message?: string; extensions?: { code?: string } }[];
    };
    if (body.errors && body.errors.length > 0) {
      const messages = body.errors.map((error) => error.message ?? 'unknown error').join('; ');
      const codes = body.errors.map((error) => error.extensions?.code ?? '');
      if (codes.some((code) => code === 'UNAVAILABLE' || code === 'INTERNAL')) {
        throw new WandbUnavailableError(`W&B at ${this.config.baseUrl} could not ${what} now: ${messages}`);
      }
      if (/permission|not authorized|unauthori[sz]ed|forbidden/i.test(messages))
        throw this.authError(403, what, messages);
      throw new WandbRequestError(`W&B at ${this.config.baseUrl} refused to ${what}: ${messages}`);
    }
    if (body.data === undefined || body.data === null) {
      throw new WandbRequestError(`W&B at ${this.config.baseUrl} answered "${what}" without data.`);
    }
    return body.data;
  }

  /** POST JSON to a path of the API (`/files/<entity>/<project>/<run>/file_stream`) or of the trace server. */
  async postJson(what: string, url: string, body: unknown): Promise<unknown> {
    return this.readJson(what, await this.send(what, url, 'POST', { json: body }));
  }

  /** POST a multipart form (the trace server's `file/create`). */
  async postForm(what: string, url: string, form: FormData): Promise<unknown> {
    return this.readJson(what, await this.send(what, url, 'POST', { form }));
  }

  /** PUT a file to an upload URL the server handed out, with the MD5 W&B checks. */
  async upload(what: string, url: string, headers: string[], body: RequestBody, md5Base64: string): Promise<void> {
    const extra: Record<string, string> = { 'content-md5': md5Base64 };
    for (const header of headers) {
      const colon = header.indexOf(':');
      if (colon > 0) extra[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
    }
    const response = await this.send(what, url, 'PUT', body, extra, this.uploadTimeout, false);
    await response.arrayBuffer();
  }

  traceUrl(path: string): string {
    return `${this.config.traceServerUrl}${path}`;
  }

  private async send(
    what: string,
    url: string,
    method: 'POST' | 'PUT',
    body: RequestBody,
    extraHeaders: Record<string, string> = {},
    timeout = this.requestTimeout,
    authorize = true,
  ): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    // Upload URLs are pre-signed (cloud storage refuses a second credential); everything else carries the key.
    if (authorize) headers.authorization = this.authorization;
    let payload: RequestInit['body'];
    if ('json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if ('bytes' in body) {
      payload = new Uint8Array(body.bytes);
    } else if ('form' in body) {
      payload = body.form;
    } else {
      headers['content-length'] = String(body.size);
      payload = Readable.toWeb(fs.createReadStream(body.file)) as unknown as RequestInit['body'];
    }
    let response: Response;
    try {
      response = await this.fetchImplementation(url, {
        method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(timeout),
        ...('file' in body ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new WandbUnavailableError(
        `W&B at ${this.config.baseUrl} is unreachable (${cause?.code ?? cause?.message ?? (error as Error).message}) ` +
          `while trying to ${what}; retrying.`,
      );
    }
    if (response.ok) return response;
    const text = (await response.text().catch(() => '')).slice(0, 600);
    if (response.status === 401 || response.status === 403) throw this.authError(response.status, what, text);
    if (response.status === 408 || response.status === 429 || response.status >= 500) {
      throw new WandbUnavailableError(
        `W&B at ${this.config.baseUrl} answered ${response.status} while trying to ${what}; retrying. ${text}`,
      );
    }
    throw new WandbRequestError(`W&B at ${this.config.baseUrl} refused to ${what} (${response.status}): ${text}`);
  }

  private async readJson(what: string, response: Response): Promise<unknown> {
    const text = await response.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new WandbUnavailableError(`W&B at ${this.config.baseUrl} answered "${what}" with something not JSON.`);
    }
  }

  private authError(status: number, what: string, detail: string): WandbAuthError {
    const { baseUrl, entity, project, org } = this.config;
    const key = `WANDB_API_KEY (…${this.config.apiKey.slice(-4)})`;
    const message =
      status === 401
        ? `W&B at ${baseUrl} rejected ${key} (401) while trying to ${what}: the key is wrong or revoked. ` +
          'Set WANDB_API_KEY to a valid key of that server.'
        : `W&B at ${baseUrl} refused ${key} permission (403) to ${what}: the key's user must be able to write to ` +
          `the entity WANDB_ENTITY=${entity} (project ${project}) and to the registries of the org WANDB_ORG=${org}. ` +
          'Fix the key, the entity/org, or the user’s role there.';
    return new WandbAuthError(`${message}${detail ? ` Server said: ${detail}` : ''}`, status);
  }
}
