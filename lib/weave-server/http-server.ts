import crypto from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import http from 'node:http';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { type z, type ZodType } from 'zod';
import { LineageError, type LineageStore } from '../lineage';
import {
  MalformedBodyError,
  PayloadTooLargeError,
  RequestValidationError,
  RouteNotFoundError,
  ServeConfigurationError,
  UnauthorizedError,
  WeaveServerError,
} from './errors';
import { parseProjectId } from './trace-server';
import {
  callsCompleteRequest,
  feedbackBatchCreateRequest,
  callEndRequest,
  callReadRequest,
  callsQueryRequest,
  callsQueryStatsRequest,
  callStartRequest,
  callUpdateRequest,
  callUpsertBatchRequest,
  feedbackCreateRequest,
  feedbackQueryRequest,
  fileContentRequest,
  graphqlRequest,
  objectCreateRequest,
  objectReadRequest,
  objectsQueryRequest,
  refsReadBatchRequest,
  tableCreateRequest,
  tableQueryRequest,
  tableQueryStatsRequest,
  tableUpdateRequest,
} from './schemas';
import { requireSameProject, WeaveTraceServer } from './trace-server';
import { WandbApi, WandbApiError } from './wandb-api/wandb-api';
import type { PipelineRunSource } from '../temporal/pipeline-runs';
import { isUiPath, WebUi } from './ui/web-ui';

export interface WeaveServerOptions {
  store: LineageStore;
  /** The secret clients must send: as the password of HTTP basic auth (what the SDK does with WANDB_API_KEY) or as a bearer token. */
  token: string;
  /** Interface to listen on. Default 127.0.0.1 (this host only). */
  host?: string;
  /** Port; 0 picks a free one. Default 6345. */
  port?: number;
  /** Entity answered to `weave.init('<project>')` without an entity. Default: the store's default entity (weft). */
  defaultEntity?: string;
  /** The organisation W&B registry paths (`<org>/wandb-registry-<R>/<C>`) name. Default: the store's default org. */
  org?: string;
  /** Largest request body in bytes. Default 64 MiB (the SDK batches up to about 10 MiB of calls). */
  maxBodyBytes?: number;
  /** Called once per failed request with the error the client was sent, and once per call skipped from a batch (for logs). */
  onError?: (error: Error, request: { method: string; path: string; status: number }) => void;
  /** The web UI at `/` (login with the same token). Default: on, over the store's default entity/project. */
  ui?: {
    /** Base URL of the Temporal Web UI that workflow ids link to (`http://127.0.0.1:8233`); unset: ids are not links. */
    temporalUiUrl?: string;
    temporalNamespace?: string;
    /** Temporal visibility for the pipelines page; unset: the page says none is configured. */
    pipelines?: PipelineRunSource;
    /** Project the pages show when a URL names none. Default: the store's default. */
    project?: string;
  };
}

export interface RunningWeaveServer {
  /** `http://host:port`: the value for WF_TRACE_SERVER_URL. */
  url: string;
  port: number;
  /** Stops accepting connections, ends open ones and resolves when the server is closed (the store stays open). */
  close(): Promise<void>;
}

type Reply =
  | { kind: 'json'; body: unknown; status?: number }
  /** A body written piece by piece as `chunks` yields, with backpressure (a large answer is never held whole). */
  | { kind: 'stream'; contentType: string; chunks: AsyncIterable<string> }
  | { kind: 'bytes'; body: Buffer }
  | { kind: 'file'; path: string; size: number };
type Handler = (request: IncomingBody) => Promise<Reply>;

interface IncomingBody {
  bytes: Buffer;
  contentType: string;
  /** Path parameters of a pattern route, URI-decoded. */
  params: string[];
  /** `http://host:port` as the client reached this server (file URLs handed out point there). */
  baseUrl: string;
}

/** A route whose path has parameters (`/v2/{entity}/{project}/…`, W&B's file URLs); `stream` routes read the body themselves. */
interface PatternRoute {
  method: string;
  pattern: RegExp;
  handler: Handler;
  stream?: (request: http.IncomingMessage, params: string[]) => Promise<Reply>;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

function json(body: unknown): Reply {
  return { kind: 'json', body };
}

/**
 * Deepest nesting a JSON value may have. Real Weave values nest a few dozen levels; past this the store's
 * recursive digests would overflow the stack (a 500) — so deeper bodies answer 400, deeper calls in a batch are skipped.
 */
export const maxJsonDepth = 1000;

/** The nesting depth of a parsed JSON value, iteratively (the value itself may be deeper than the stack), stopping past `limit`. */
export function jsonDepth(value: unknown, limit = maxJsonDepth): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 1]];
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!;
    if (current === null || typeof current !== 'object') continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const child of Object.values(current as object)) pending.push([child, depth + 1]);
  }
  return deepest;
}

function tooDeep(what: string): MalformedBodyError {
  return new MalformedBodyError(`${what} nests deeper than ${maxJsonDepth} levels; flatten it.`);
}

function parseJsonBody(request: IncomingBody, checkDepth = true): unknown {
  if (request.bytes.length === 0) {
    throw new MalformedBodyError('The request has no body; send a JSON object (Content-Type: application/json).');
  }
  let value: unknown;
  try {
    value = JSON.parse(request.bytes.toString('utf8')) as unknown;
  } catch (error) {
    throw new MalformedBodyError(`The request body is not valid JSON: ${(error as Error).message}.`);
  }
  if (checkDepth && jsonDepth(value) > maxJsonDepth) throw tooDeep('The request body');
  return value;
}

/** Parses and validates a JSON body, turning zod's issues into FastAPI's 422 `detail` list (what Weave clients read). */
function validated<Schema extends ZodType>(
  schema: Schema,
  request: IncomingBody,
  body: unknown = parseJsonBody(request),
): z.infer<Schema> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    loc: ['body', ...issue.path.map((part) => (typeof part === 'number' ? part : String(part)))],
    msg: issue.message,
    type: issue.code,
  }));
  const summary = issues
    .slice(0, 5)
    .map((issue) => `${issue.loc.slice(1).join('.') || 'body'}: ${issue.msg}`)
    .join('; ');
  throw new RequestValidationError(`The request body does not match the endpoint's schema — ${summary}.`, issues);
}

/** Reads `project_id` and `file` from the SDK's multipart upload, using the platform's own form-data parser. */
async function parseFileUpload(request: IncomingBody): Promise<{ projectId: string; bytes: Uint8Array }> {
  if (!request.contentType.startsWith('multipart/form-data')) {
    throw new MalformedBodyError('file/create takes multipart/form-data with the fields project_id and file.');
  }
  let form: FormData;
  try {
    form = await new Request('http://weft.invalid/file/create', {
      method: 'POST',
      headers: { 'content-type': request.contentType },
      body: request.bytes,
    }).formData();
  } catch (error) {
    throw new MalformedBodyError(`The multipart body cannot be parsed: ${(error as Error).message}.`);
  }
  const projectId = form.get('project_id');
  const file = form.get('file');
  if (typeof projectId !== 'string' || file === null || typeof file === 'string') {
    throw new RequestValidationError('file/create needs the form fields project_id (text) and file (a file).', [
      { loc: ['body', 'project_id'], msg: 'required text field', type: 'missing' },
      { loc: ['body', 'file'], msg: 'required file field', type: 'missing' },
    ]);
  }
  return { projectId, bytes: new Uint8Array(await file.arrayBuffer()) };
}

function buildRoutes(
  traceServer: WeaveTraceServer,
  wandb: WandbApi,
  onSkippedCall: (error: Error, what: string) => void = () => undefined,
): Map<string, Handler> {
  const routes = new Map<string, Handler>();
  const post = (path: string, handler: Handler): void => void routes.set(`POST ${path}`, handler);
  routes.set('GET /health', async () => json({ status: 'ok' }));
  routes.set('GET /server_info', async () => json(traceServer.serverInfo()));
  post('/call/start', async (request) => {
    return json(await traceServer.startCall(validated(callStartRequest, request).start));
  });
  post('/call/end', async (request) => json(await traceServer.endCall(validated(callEndRequest, request).end)));
  post('/call/upsert_batch', async (request) => {
    // A call nested too deep is skipped and reported like any call the store refuses; the rest are stored.
    const body = parseJsonBody(request, false) as { batch?: unknown };
    const items = Array.isArray(body?.batch) ? (body.batch as unknown[]) : undefined;
    const deep = new Set((items ?? []).flatMap((item, index) => (jsonDepth(item) > maxJsonDepth ? [index] : [])));
    if (!items && jsonDepth(body) > maxJsonDepth) throw tooDeep('The request body');
    for (const index of deep) onSkippedCall(tooDeep(`Batch item ${index}`), `batch item ${index}`);
    const kept = validated(callUpsertBatchRequest, request, {
      ...body,
      batch: items?.filter((_, index) => !deep.has(index)),
    });
    const { res } = await traceServer.upsertBatch(kept.batch);
    // Results keep the batch's order: `{}` where a call was skipped.
    const results = (items ?? []).map((_, index) => (deep.has(index) ? {} : res.shift()!));
    return json({ res: results });
  });
  post('/call/read', async (request) => {
    const body = validated(callReadRequest, request);
    return json(await traceServer.readCall(body.project_id, body.id));
  });
  post('/call/update', async (request) => json(await traceServer.updateCall(validated(callUpdateRequest, request))));
  post('/calls/stream_query', async (request) => {
    const pages = await traceServer.queryCalls(validated(callsQueryRequest, request));
    return {
      kind: 'stream',
      contentType: 'application/jsonl',
      chunks: (async function* () {
        for await (const page of pages) yield page.map((call) => `${JSON.stringify(call)}\n`).join('');
      })(),
    };
  });
  post('/calls/query', async (request) => {
    const pages = await traceServer.queryCalls(validated(callsQueryRequest, request));
    return {
      kind: 'stream',
      contentType: 'application/json',
      chunks: (async function* () {
        let separator = '';
        yield '{"calls":[';
        for await (const page of pages) {
          yield separator + page.map((call) => JSON.stringify(call)).join(',');
          separator = ',';
        }
        yield ']}';
      })(),
    };
  });
  post('/calls/query_stats', async (request) =>
    json({ count: await traceServer.countCalls(validated(callsQueryStatsRequest, request)) }),
  );
  post('/obj/create', async (request) =>
    json(await traceServer.publishObject(validated(objectCreateRequest, request))),
  );
  post('/obj/read', async (request) => json(await traceServer.readObject(validated(objectReadRequest, request))));
  post('/objs/query', async (request) => json(await traceServer.queryObjects(validated(objectsQueryRequest, request))));
  post('/table/create', async (request) => {
    const body = validated(tableCreateRequest, request);
    return json(await traceServer.createTable(body.table.project_id, body.table.rows));
  });
  post('/table/update', async (request) => json(await traceServer.updateTable(validated(tableUpdateRequest, request))));
  post('/table/query', async (request) => json(await traceServer.queryTable(validated(tableQueryRequest, request))));
  post('/table/query_stats', async (request) => {
    const body = validated(tableQueryStatsRequest, request);
    return json(await traceServer.tableRowCount(body.project_id, body.digest));
  });
  post('/file/create', async (request) => {
    const upload = await parseFileUpload(request);
    return json(await traceServer.createFile(upload.projectId, upload.bytes));
  });
  post('/file/content', async (request) => {
    const body = validated(fileContentRequest, request);
    return { kind: 'bytes', body: await traceServer.fileContent(body.project_id, body.digest) };
  });
  post('/feedback/create', async (request) =>
    json(await traceServer.createFeedback(validated(feedbackCreateRequest, request))),
  );
  post('/feedback/query', async (request) =>
    json(await traceServer.queryFeedback(validated(feedbackQueryRequest, request))),
  );
  post('/refs/read_batch', async (request) =>
    json(await traceServer.readRefs(validated(refsReadBatchRequest, request).refs)),
  );
  post('/feedback/batch/create', async (request) =>
    json(await traceServer.createFeedbackBatch(validated(feedbackBatchCreateRequest, request).batch)),
  );
  post('/graphql', async (request) => {
    let body;
    try {
      body = validated(graphqlRequest, request);
    } catch (error) {
      throw new WandbApiError(`Malformed GraphQL request: ${(error as Error).message}`, 400);
    }
    const result = await wandb.execute(body, { baseUrl: request.baseUrl });
    return { kind: 'json', body: result.body, status: result.status };
  });
  return routes;
}

const segment = '([^/]+)';

function buildPatternRoutes(traceServer: WeaveTraceServer, wandb: WandbApi): PatternRoute[] {
  const scopeOf = (params: string[]): { entity: string; project: string } => {
    const scope = parseProjectId(`${params[0]}/${params[1]}`);
    return scope;
  };
  return [
    {
      method: 'POST',
      pattern: new RegExp(`^/v2/${segment}/${segment}/calls/complete$`),
      handler: async (request) =>
        json(await traceServer.completeCalls(scopeOf(request.params), validated(callsCompleteRequest, request).batch)),
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/v2/${segment}/${segment}/call/start$`),
      handler: async (request) => {
        const start = validated(callStartRequest, request).start;
        requireSameProject(scopeOf(request.params), start.project_id);
        return json(await traceServer.startCall(start));
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/v2/${segment}/${segment}/call/end$`),
      handler: async (request) => {
        const end = validated(callEndRequest, request).end;
        requireSameProject(scopeOf(request.params), end.project_id);
        return json(await traceServer.endCall(end));
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/files/${segment}/${segment}/${segment}/file_stream$`),
      handler: async (request) => {
        const body = parseJsonBody(request);
        if (body === null || typeof body !== 'object') throw new WandbApiError('file_stream takes a JSON object.', 400);
        return json(await wandb.fileStream(request.params[2]!, body as Record<string, unknown>));
      },
    },
    {
      method: 'PUT',
      pattern: new RegExp(`^/wandb-files/run/${segment}/${segment}/${segment}/${segment}$`),
      handler: async (request) => {
        await wandb.storeRunFile(request.params[0]!, request.params[1]!, request.bytes);
        return json({});
      },
    },
    {
      method: 'PUT',
      pattern: new RegExp(`^/wandb-files/manifest/${segment}$`),
      handler: async (request) => {
        await wandb.stageManifest(request.params[0]!, request.bytes);
        return json({});
      },
    },
    {
      method: 'PUT',
      pattern: new RegExp(`^/wandb-files/upload/${segment}/${segment}$`),
      handler: () => Promise.reject(new Error('streamed')),
      stream: async (request, params) => {
        await wandb.stageUpload(params[0]!, params[1]!, request);
        return json({});
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/wandb-files/manifest/${segment}$`),
      handler: async (request) => json(await wandb.manifestOf(request.params[0]!)),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/wandb-files/artifact/${segment}/${segment}$`),
      handler: async (request) => {
        const file = await wandb.fileOf(request.params[0]!, request.params[1]!);
        return { kind: 'file', path: file.path, size: file.size };
      },
    },
  ];
}

function matchPattern(
  routes: PatternRoute[],
  method: string,
  routePath: string,
): { route: PatternRoute; params: string[] } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const match = route.pattern.exec(routePath);
    if (match) {
      try {
        return { route, params: match.slice(1).map((part) => decodeURIComponent(part)) };
      } catch {
        throw new MalformedBodyError(`The path ${routePath} has a malformed %-escape.`);
      }
    }
  }
  return undefined;
}

/** The W&B side (GraphQL, file_stream, file URLs) answers errors in W&B's shape; the trace server in FastAPI's. */
function isWandbPath(routePath: string): boolean {
  return routePath === '/graphql' || routePath.startsWith('/wandb-files/') || routePath.startsWith('/files/');
}

/** True when the Authorization header carries the token (basic-auth password, any user name; or a bearer token). */
function isAuthorized(header: string | undefined, token: Buffer): boolean {
  if (!header) return false;
  let presented: string | undefined;
  const [scheme, value] = header.split(' ', 2);
  if (scheme?.toLowerCase() === 'basic' && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    presented = colon === -1 ? decoded : decoded.slice(colon + 1);
  } else if (scheme?.toLowerCase() === 'bearer' && value) {
    presented = value;
  }
  if (presented === undefined) return false;
  const candidate = Buffer.from(presented, 'utf8');
  return candidate.length === token.length && crypto.timingSafeEqual(candidate, token);
}

function statusOf(error: unknown): number {
  if (error instanceof WeaveServerError || error instanceof WandbApiError) return error.status;
  if (error instanceof LineageError) {
    switch (error.name) {
      case 'NotFoundError':
        return 404;
      case 'ValueTooLargeError':
        return 413;
      case 'IdempotencyKeyReuseError':
      case 'AliasConflictError':
        return 409;
      default:
        // Busy or unreachable database: 503 makes the SDK retry with backoff, which is what these need.
        return error.retryable ? 503 : 400;
    }
  }
  return 500;
}

function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(
        new PayloadTooLargeError(`The request body is ${declared} bytes; the limit is ${limit}. Send smaller batches.`),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Answered with 413 and "connection: close"; the rest of the body is read and dropped, never kept.
        chunks.length = 0;
        reject(new PayloadTooLargeError(`The request body is over ${limit} bytes; send smaller batches.`));
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    // A client that goes away mid-body settles the read (after 'end' this is a no-op), so no handler waits forever.
    const gone = (): void => reject(new MalformedBodyError('The client closed the connection before the body ended.'));
    request.on('error', gone);
    request.on('close', gone);
  });
}

async function send(response: http.ServerResponse, reply: Reply): Promise<void> {
  if (reply.kind === 'json') {
    response.writeHead(reply.status ?? 200, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
  } else if (reply.kind === 'stream') {
    response.writeHead(200, { 'content-type': reply.contentType });
    await pipeline(Readable.from(reply.chunks), response);
  } else if (reply.kind === 'bytes') {
    response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(reply.body);
  } else {
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': reply.size });
    await pipeline(fs.createReadStream(reply.path), response);
  }
}

/**
 * Starts the Weave trace-server HTTP API over a lineage store. Every failure becomes a JSON answer
 * (`{"detail": …}`, FastAPI's shape, which the weave SDK reads); no request can stop the server.
 */
export async function startWeaveServer(options: WeaveServerOptions): Promise<RunningWeaveServer> {
  if (!options.token) {
    throw new ServeConfigurationError(
      'weft serve needs a token: set WEFT_SERVE_TOKEN to a secret and give the same value to the weave SDK as WANDB_API_KEY.',
    );
  }
  const token = Buffer.from(options.token, 'utf8');
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const traceServer = new WeaveTraceServer(options.store, options.defaultEntity ?? 'weft', (error, what) => {
    try {
      options.onError?.(error, { method: 'POST', path: `/call/upsert_batch (${what} skipped)`, status: 400 });
    } catch {
      // A logging hook must not fail the rest of the batch.
    }
  });
  const signingKey = crypto.createHash('sha256').update('weft-file-urls:').update(token).digest();
  const sign = (urlPath: string): string => crypto.createHmac('sha256', signingKey).update(urlPath).digest('hex');
  const wandb = new WandbApi(options.store, {
    defaultEntity: options.defaultEntity ?? 'weft',
    org: options.org ?? options.store.defaults.org,
    sign,
  });
  const routes = buildRoutes(traceServer, wandb, (error, what) => {
    try {
      options.onError?.(error, { method: 'POST', path: `/call/upsert_batch (${what} skipped)`, status: 400 });
    } catch {
      // A logging hook must not fail the rest of the batch.
    }
  });
  const patternRoutes = buildPatternRoutes(traceServer, wandb);
  const webUi = new WebUi(
    {
      store: options.store,
      org: options.org ?? options.store.defaults.org,
      entity: options.defaultEntity ?? options.store.defaults.entity,
      project: options.ui?.project ?? options.store.defaults.project,
      temporalUiUrl: options.ui?.temporalUiUrl?.replace(/\/+$/, ''),
      temporalNamespace: options.ui?.temporalNamespace ?? 'default',
      pipelines: options.ui?.pipelines,
    },
    token,
    (header) => isAuthorized(header, token),
    (error, request) => {
      try {
        options.onError?.(error, request);
      } catch {
        // A logging hook must not turn an answered request into an unanswered one.
      }
    },
  );
  /** File URLs this server handed out carry a signature of their path, so the SDK's plain PUT/GET needs no header. */
  const signed = (rawPath: string, query: string): boolean => {
    const sig = new URLSearchParams(query).get('sig');
    if (!sig || !rawPath.startsWith('/wandb-files/')) return false;
    const expected = Buffer.from(sign(rawPath), 'utf8');
    const presented = Buffer.from(sig, 'utf8');
    return presented.length === expected.length && crypto.timingSafeEqual(presented, expected);
  };

  const handle = async (request: http.IncomingMessage, response: http.ServerResponse): Promise<void> => {
    const method = request.method ?? 'GET';
    const [rawPath, query = ''] = (request.url ?? '/').split('?', 2) as [string, string?];
    const path = rawPath.replace(/\/+$/, '') || '/';
    // FastAPI's trace server answers both with and without the /traces prefix a W&B host puts in front.
    const routePath = path.startsWith('/traces/') ? path.slice('/traces'.length) : path;
    const baseUrl = `http://${request.headers.host ?? 'localhost'}`;
    if (isUiPath(path)) {
      try {
        await webUi.handle(request, response, path, query);
      } catch (error) {
        try {
          options.onError?.(error instanceof Error ? error : new Error(String(error)), { method, path, status: 500 });
        } catch {
          // A logging hook must not turn an answered request into an unanswered one.
        }
        if (!response.headersSent) {
          response
            .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
            .end('weft serve failed on this page.');
        } else response.destroy();
      }
      return;
    }
    let status = 200;
    try {
      if (!isAuthorized(request.headers.authorization, token) && !signed(path, query)) {
        request.resume();
        throw new UnauthorizedError(
          'Missing or wrong token: send WEFT_SERVE_TOKEN as the W&B API key (WANDB_API_KEY) or as "Authorization: Bearer <token>".',
        );
      }
      let handler = routes.get(`${method} ${routePath}`);
      let params: string[] = [];
      if (!handler) {
        const matched = matchPattern(patternRoutes, method, routePath);
        if (matched?.route.stream) {
          const reply = await matched.route.stream(request, matched.params);
          await send(response, reply);
          return;
        }
        if (matched) {
          handler = matched.route.handler;
          params = matched.params;
        }
      }
      if (!handler) {
        request.resume();
        const known = [...routes.keys()].filter((key) => key.endsWith(` ${routePath}`));
        throw new RouteNotFoundError(
          known.length > 0
            ? `${method} ${routePath} is not allowed; use ${known.join(' or ')}.`
            : `weft serve has no endpoint ${method} ${routePath}; it serves the Weave trace-server API (see lib/weave-server/README.md).`,
        );
      }
      const bytes = await readBody(request, maxBodyBytes);
      const reply = await handler({
        bytes,
        contentType: String(request.headers['content-type'] ?? ''),
        params,
        baseUrl,
      });
      if (reply.kind === 'json' && reply.status !== undefined) status = reply.status;
      await send(response, reply);
    } catch (error) {
      status = statusOf(error);
      const failure = error instanceof Error ? error : new Error(String(error));
      const message = status === 500 ? `weft serve failed on this request: ${failure.message}` : failure.message;
      const detail = isWandbPath(routePath)
        ? { errors: [{ message }], error: message }
        : error instanceof RequestValidationError
          ? { detail: error.issues, message: error.message }
          : { detail: message };
      try {
        options.onError?.(failure, { method, path, status });
      } catch {
        // A logging hook must not turn an answered request into an unanswered one.
      }
      if (!response.headersSent) {
        response
          .writeHead(status, {
            'content-type': 'application/json',
            ...(status === 401 ? { 'www-authenticate': 'Basic realm="weft"' } : {}),
            // A body the client is still sending is not read: close the connection instead of draining it.
            ...(error instanceof PayloadTooLargeError ? { connection: 'close' } : {}),
          })
          .end(JSON.stringify(detail));
      } else {
        response.destroy();
      }
    }
  };

  const server = http.createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  // Slow or stalled clients are cut off rather than holding sockets forever.
  server.requestTimeout = 5 * 60_000;
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_error, socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\r\n{"detail":"bad HTTP request"}');
    else socket.destroy();
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 6345, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
