/**
 * Server-side HTML for the web UI: every interpolated value is escaped unless it is already `Html` built here, so a
 * ref, a model answer or a query string can never become markup.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (character) => entities[character]!);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(value);
}

/** Tagged template: `html\`<td>${text}</td>\`` escapes `text`; nested `Html` and arrays of it pass through. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0]!;
  values.forEach((value, index) => {
    text += render(value) + strings[index + 1]!;
  });
  return new Html(text);
}

/** A URL with query parameters, each encoded (the result is still escaped where it is interpolated). */
export function url(
  path: string,
  query: Record<string, string | number | undefined | (string | number)[]> = {},
): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === '') continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

export function link(href: string, text: unknown, attributes: { title?: string; class?: string } = {}): Html {
  return html`<a
    href="${href}"
    ${attributes.title ? html` title="${attributes.title}"` : ''}${
      attributes.class ? html` class="${attributes.class}"` : ''
    }
    >${text}</a
  >`;
}

/** `0.41235` → `0.412`; NaN and absent values as an em dash. */
export function formatNumber(value: number | null | undefined, digits = 3): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '—';
}

export function formatSigned(value: number | null | undefined, digits = 3): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)}`;
}

/** Shortens long text for a table cell; the full text stays in the title. */
export function clipped(text: string, length = 120): Html {
  if (text.length <= length) return html`${text}`;
  return html`<span title="${text}">${text.slice(0, length - 1)}…</span>`;
}

export interface PageOptions {
  title: string;
  /** Which top-level section is active in the navigation. */
  section?: 'registries' | 'evaluations' | 'traces' | 'pipelines' | 'lineage';
  /** No navigation (the login page). */
  bare?: boolean;
}

const sections: [NonNullable<PageOptions['section']>, string, string][] = [
  ['registries', 'Registries', '/ui/registries'],
  ['evaluations', 'Evaluations', '/ui/evaluations'],
  ['traces', 'Traces', '/ui/traces'],
  ['pipelines', 'Pipelines', '/ui/pipelines'],
  ['lineage', 'Lineage', '/ui/lineage'],
];

export function page(options: PageOptions, body: Html): string {
  const navigation = options.bare
    ? ''
    : html`<nav>
        <span class="brand">weft</span>
        ${sections.map(
          ([key, label, href]) =>
            html`<a href="${href}" ${options.section === key ? html` class="active"` : ''}>${label}</a>`,
        )}
        <form method="post" action="/ui/logout" class="logout"><button type="submit">Log out</button></form>
      </nav>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${options.title} · weft</title>
        <link rel="stylesheet" href="/ui/assets/ui.css" />
        <script src="/ui/assets/ui.js" defer></script>
      </head>
      <body>
        ${navigation}
        <main>
          <h1>${options.title}</h1>
          ${body}
        </main>
      </body>
    </html> `.text;
}
