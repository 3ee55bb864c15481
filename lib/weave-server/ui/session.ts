import crypto from 'node:crypto';

/**
 * The UI's login: the serve token, typed once into a form, becomes a signed session cookie (HttpOnly, SameSite=Strict),
 * so a browser never keeps the token itself. The cookie is `<expiry ms>.<nonce>.<HMAC>` under a key derived from the
 * token: changing WEFT_SERVE_TOKEN ends every session; nothing is stored server-side.
 */
export const sessionCookieName = 'weft_session';

/** How long a session lasts: 12 hours. */
export const sessionLifetimeMilliseconds = 12 * 60 * 60 * 1000;

export class SessionKeys {
  private readonly key: Buffer;

  constructor(private readonly token: Buffer) {
    this.key = crypto.createHash('sha256').update('weft-ui-session:').update(token).digest();
  }

  /** True when `presented` is the serve token (constant-time). */
  tokenMatches(presented: string): boolean {
    const candidate = Buffer.from(presented, 'utf8');
    return candidate.length === this.token.length && crypto.timingSafeEqual(candidate, this.token);
  }

  private signature(payload: string): string {
    return crypto.createHmac('sha256', this.key).update(payload).digest('base64url');
  }

  /** A fresh session cookie value valid for sessionLifetimeMilliseconds from `now`. */
  issue(now = Date.now()): string {
    const payload = `${now + sessionLifetimeMilliseconds}.${crypto.randomBytes(12).toString('base64url')}`;
    return `${payload}.${this.signature(payload)}`;
  }

  /** True for an unexpired cookie value this server signed. */
  verify(value: string | undefined, now = Date.now()): boolean {
    if (!value) return false;
    const lastDot = value.lastIndexOf('.');
    if (lastDot <= 0) return false;
    const payload = value.slice(0, lastDot);
    const expected = Buffer.from(this.signature(payload), 'utf8');
    const presented = Buffer.from(value.slice(lastDot + 1), 'utf8');
    if (expected.length !== presented.length || !crypto.timingSafeEqual(expected, presented)) return false;
    const expires = Number(payload.split('.', 1)[0]);
    return Number.isFinite(expires) && expires > now;
  }
}

/** The value of one cookie from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator === -1) continue;
    if (part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
  }
  return undefined;
}

export function sessionCookie(value: string): string {
  return `${sessionCookieName}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${sessionLifetimeMilliseconds / 1000}`;
}

export function clearedSessionCookie(): string {
  return `${sessionCookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}

/** Where to go after login: a path on this server only (never `//host` or a scheme), else the registries page. */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/ui/registries';
  return next;
}
