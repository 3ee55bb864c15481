import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { LineageError } from '../../lineage';
import { UiInputError } from '../errors';
import { comparePage, evaluationsPage } from './evaluation-pages';
import { html, page } from './html';
import { lineagePage } from './lineage-page';
import { pipelinesPage } from './pipeline-page';
import { collectionPage, registriesPage, registryPage } from './registry-pages';
import { clearedSessionCookie, cookieValue, safeNext, SessionKeys, sessionCookie, sessionCookieName } from './session';
import { tracePage, tracesPage } from './trace-pages';
import type { UiContext } from './ui-context';

/**
 * The web UI `weft serve` serves at `/`: server-rendered pages over the lineage store, behind a login form that
 * turns the serve token into a session cookie. A request with the API token (Authorization header) is let in too.
 */
const assetFolder = path.join(__dirname, 'assets');
const assets: Record<string, { type: string; body: Buffer }> = {
  '/ui/assets/ui.css': { type: 'text/css; charset=utf-8', body: fs.readFileSync(path.join(assetFolder, 'ui.css')) },
  '/ui/assets/ui.js': {
    type: 'text/javascript; charset=utf-8',
    body: fs.readFileSync(path.join(assetFolder, 'ui.js')),
  },
};

/** Scripts and styles only from this server; nothing inline, nothing framed, forms post only here. */
const securityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

type PageRoute = {
  pattern: RegExp;
  render: (context: UiContext, params: string[], query: URLSearchParams) => Promise<string>;
};

const pageRoutes: PageRoute[] = [
  { pattern: /^\/ui\/registries$/, render: (context) => registriesPage(context) },
  { pattern: /^\/ui\/registries\/([^/]+)$/, render: (context, [name]) => registryPage(context, name!) },
  {
    pattern: /^\/ui\/registries\/([^/]+)\/([^/]+)$/,
    render: (context, [registry, collection]) => collectionPage(context, registry!, collection!),
  },
  { pattern: /^\/ui\/lineage$/, render: (context, _, query) => lineagePage(context, query) },
  { pattern: /^\/ui\/evaluations$/, render: (context, _, query) => evaluationsPage(context, query) },
  { pattern: /^\/ui\/evaluations\/compare$/, render: (context, _, query) => comparePage(context, query) },
  { pattern: /^\/ui\/traces$/, render: (context, _, query) => tracesPage(context, query) },
  { pattern: /^\/ui\/traces\/([^/]+)$/, render: (context, [traceId], query) => tracePage(context, traceId!, query) },
  { pattern: /^\/ui\/pipelines$/, render: (context) => pipelinesPage(context) },
];

/** True for the paths the UI answers; everything else is the trace-server and W&B API. */
export function isUiPath(routePath: string): boolean {
  return routePath === '/' || routePath === '/ui' || routePath.startsWith('/ui/');
}

function loginForm(next: string, problem?: string): string {
  return page(
    { title: 'Log in', bare: true },
    html`<form method="post" action="/ui/login" class="login" id="login">
      ${problem ? html`<p class="error" role="alert">${problem}</p>` : ''}
      <p>Enter the token <code>weft serve</code> was started with (<code>WEFT_SERVE_TOKEN</code>).</p>
      <input type="hidden" name="next" value="${next}" />
      <label>Token <input type="password" name="token" autocomplete="current-password" autofocus required /></label>
      <button type="submit">Log in</button>
    </form>`,
  );
}

function errorPage(status: number, title: string, message: string, detail?: string): string {
  return page(
    { title },
    html`<p class="error" id="error-message">${message}</p>
      ${detail ? html`<p class="muted">${detail}</p>` : ''}
      <p>
        <a href="/ui/registries">Registries</a> · <a href="/ui/evaluations">Evaluations</a> ·
        <a href="/ui/traces">Traces</a>
      </p>
      <!-- status ${status} -->`,
  );
}

function readForm(request: http.IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new UiInputError('The login form is over 16 KiB.'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    request.on('error', reject);
  });
}

export class WebUi {
  private readonly sessions: SessionKeys;

  constructor(
    private readonly context: UiContext,
    token: Buffer,
    /** True when the request's Authorization header carries the API token. */
    private readonly hasApiToken: (header: string | undefined) => boolean,
    /** Told about every page that failed with a server error (for the server's log). */
    private readonly onPageError: (
      error: Error,
      request: { method: string; path: string; status: number },
    ) => void = () => undefined,
  ) {
    this.sessions = new SessionKeys(token);
  }

  private send(
    response: http.ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): number {
    response
      .writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...securityHeaders, ...headers })
      .end(body);
    return status;
  }

  private redirect(response: http.ServerResponse, location: string, headers: Record<string, string> = {}): number {
    response.writeHead(303, { location, ...securityHeaders, ...headers }).end();
    return 303;
  }

  /** Answers one UI request; returns the status sent (for the server's log). */
  async handle(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    routePath: string,
    rawQuery: string,
  ): Promise<number> {
    const method = request.method ?? 'GET';
    const query = new URLSearchParams(rawQuery);
    const asset = assets[routePath];
    if (asset && method === 'GET') {
      response.writeHead(200, {
        'content-type': asset.type,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
      });
      response.end(asset.body);
      return 200;
    }
    if (routePath === '/ui/login') {
      if (method === 'POST') {
        const form = await readForm(request);
        const next = safeNext(form.get('next'));
        if (!this.sessions.tokenMatches(form.get('token') ?? '')) {
          return this.send(response, 401, loginForm(next, 'That is not the token this server was started with.'));
        }
        return this.redirect(response, next, { 'set-cookie': sessionCookie(this.sessions.issue()) });
      }
      return this.send(response, 200, loginForm(safeNext(query.get('next'))));
    }
    if (routePath === '/ui/logout' && method === 'POST') {
      request.resume();
      return this.redirect(response, '/ui/login', { 'set-cookie': clearedSessionCookie() });
    }
    request.resume();
    const signedIn =
      this.sessions.verify(cookieValue(request.headers.cookie, sessionCookieName)) ||
      this.hasApiToken(request.headers.authorization);
    if (!signedIn) {
      const next = rawQuery ? `${routePath}?${rawQuery}` : routePath;
      return this.redirect(response, `/ui/login?next=${encodeURIComponent(next)}`);
    }
    if (routePath === '/' || routePath === '/ui') return this.redirect(response, '/ui/registries');
    if (method !== 'GET') {
      return this.send(
        response,
        405,
        errorPage(405, 'Not allowed', `${method} ${routePath} is not allowed; the UI's pages answer GET.`),
        {
          allow: 'GET',
        },
      );
    }
    for (const route of pageRoutes) {
      const match = route.pattern.exec(routePath);
      if (!match) continue;
      let params: string[];
      try {
        params = match.slice(1).map((part) => decodeURIComponent(part));
      } catch {
        return this.send(
          response,
          400,
          errorPage(400, 'Bad request', `The path ${routePath} has a malformed %-escape.`),
        );
      }
      try {
        return this.send(response, 200, await route.render(this.context, params, query));
      } catch (error) {
        const status = this.sendError(response, error, params, query);
        if (status >= 500)
          this.onPageError(error instanceof Error ? error : new Error(String(error)), {
            method,
            path: routePath,
            status,
          });
        return status;
      }
    }
    return this.send(response, 404, errorPage(404, 'Not found', `weft serve has no page at ${routePath}.`));
  }

  private sendError(response: http.ServerResponse, error: unknown, params: string[], query: URLSearchParams): number {
    const failure = error instanceof Error ? error : new Error(String(error));
    // The page names what was asked for (the ref, registry or trace), so a stale link says which one is gone.
    const asked = [...params, ...query.getAll('ref'), ...query.getAll('ids')].filter(Boolean).join(', ');
    if (failure instanceof LineageError && failure.name === 'NotFoundError') {
      return this.send(
        response,
        404,
        errorPage(404, 'Not found', `Not found: ${asked || 'the requested record'}.`, failure.message),
      );
    }
    if (failure instanceof UiInputError || (failure instanceof LineageError && !failure.retryable)) {
      return this.send(
        response,
        400,
        errorPage(400, 'Bad request', failure.message, asked ? `Asked for: ${asked}` : undefined),
      );
    }
    return this.send(
      response,
      failure instanceof LineageError && failure.retryable ? 503 : 500,
      errorPage(500, 'Server error', `weft serve failed on this page: ${failure.message}`),
    );
  }
}
