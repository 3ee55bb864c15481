import { NotFoundError, type CallRecord } from '../../lineage';
import { UiInputError } from '../errors';
import { clipped, formatNumber, html, link, page, url, type Html } from './html';
import { workflowLink, type UiContext } from './ui-context';

/** Calls per page of the traces list. */
export const callsPerPage = 200;
/** Calls one trace page renders in full (an evaluation of 10,000 rows has 60,000): the rest are counted, not shown. */
export const callsPerTracePage = 1000;

/** `weave:///e/p/op/Evaluation.evaluate:digest` → `Evaluation.evaluate`. */
export function opShortName(opName: string): string {
  const match = /\/op\/([^/:]+)(?::[^/]*)?$/.exec(opName);
  return match ? match[1]! : opName;
}

function latencyMilliseconds(call: CallRecord): number | undefined {
  if (!call.endedAt) return undefined;
  return Date.parse(call.endedAt) - Date.parse(call.startedAt);
}

function status(call: CallRecord): Html {
  if (call.exception) return html`<span class="badge fail" title="${call.exception}">error</span>`;
  return call.endedAt ? html`<span class="badge pass">ok</span>` : html`<span class="badge running">running</span>`;
}

function time(query: URLSearchParams, name: string): string | undefined {
  const text = query.get(name);
  if (!text) return undefined;
  if (Number.isNaN(Date.parse(text))) {
    throw new UiInputError(`${name} must be a time such as 2026-01-31T12:00:00Z; got "${text}".`);
  }
  return new Date(text).toISOString();
}

function scopeOf(context: UiContext, query: URLSearchParams) {
  return { entity: query.get('entity') || context.entity, project: query.get('project') || context.project };
}

function attributeText(value: unknown): string {
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** `/ui/traces?wandb-run-id=…&op=…&since=…&until=…`: calls newest first, root calls only unless `roots=0`. */
export async function tracesPage(context: UiContext, query: URLSearchParams): Promise<string> {
  const scope = scopeOf(context, query);
  const runId = query.get('wandb-run-id') || undefined;
  const op = query.get('op') || undefined;
  const since = time(query, 'since');
  const until = time(query, 'until');
  const rootsOnly = query.get('roots') !== '0';
  const pageText = query.get('page') ?? '1';
  const pageNumber = Number(pageText);
  if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > 100_000) {
    throw new UiInputError(`page must be a whole number from 1; got "${pageText}".`);
  }
  const calls = await context.store.calls.query({
    ...scope,
    opName: op,
    attributes: runId ? { 'wandb-run-id': runId } : undefined,
    startedAfter: since,
    startedBefore: until,
    rootsOnly,
    order: 'newest',
    limit: callsPerPage + 1,
    offset: (pageNumber - 1) * callsPerPage,
  });
  const more = calls.length > callsPerPage;
  const shown = calls.slice(0, callsPerPage);
  const state = {
    entity: query.get('entity') || undefined,
    project: query.get('project') || undefined,
    'wandb-run-id': runId,
    op,
    since: query.get('since') || undefined,
    until: query.get('until') || undefined,
    roots: rootsOnly ? undefined : '0',
  };
  const form = html`<form method="get" action="/ui/traces" class="controls" id="trace-filters">
    <label>wandb-run-id <input type="text" name="wandb-run-id" value="${runId ?? ''}" /></label>
    <label
      >op <input type="text" name="op" value="${op ?? ''}" size="50" placeholder="weave:///…/op/Evaluation.evaluate:…"
    /></label>
    <label
      >since <input type="text" name="since" value="${query.get('since') ?? ''}" placeholder="2026-01-31T00:00:00Z"
    /></label>
    <label>until <input type="text" name="until" value="${query.get('until') ?? ''}" /></label>
    <label><input type="checkbox" name="roots" value="0" ${rootsOnly ? '' : html` checked`} /> nested calls too</label>
    <button type="submit">Filter</button>
  </form>`;
  return page(
    { title: 'Traces', section: 'traces' },
    html`${form}
      <p class="muted" id="call-count">
        Calls
        ${(pageNumber - 1) * callsPerPage + (shown.length ? 1 : 0)}–${(pageNumber - 1) * callsPerPage + shown.length}${
          more ? '' : ' (the last)'
        }
        in <code>${scope.entity}/${scope.project}</code>, newest first.
        ${
          pageNumber > 1
            ? link(
                url('/ui/traces', { ...state, page: pageNumber - 1 === 1 ? undefined : pageNumber - 1 }),
                '← previous',
              )
            : ''
        }
        ${more ? link(url('/ui/traces', { ...state, page: pageNumber + 1 }), 'next →') : ''}
      </p>
      <table class="sortable" id="calls">
        <thead>
          <tr>
            <th>started</th>
            <th>op</th>
            <th>name</th>
            <th>trace</th>
            <th>latency ms</th>
            <th>status</th>
            <th>wandb-run-id</th>
            <th>workflow</th>
          </tr>
        </thead>
        <tbody>
          ${shown.map(
            (call) =>
              html`<tr data-call="${call.id}">
                <td>${call.startedAt}</td>
                <td>
                  ${link(url('/ui/traces', { ...state, op: call.opName, page: undefined }), opShortName(call.opName), { title: call.opName })}
                </td>
                <td>${call.displayName ?? ''}</td>
                <td>
                  ${link(url(`/ui/traces/${encodeURIComponent(call.traceId)}`, { entity: state.entity, project: state.project }), html`<code>${call.traceId.slice(0, 13)}</code>`, { title: call.traceId })}
                </td>
                <td class="number">${formatNumber(latencyMilliseconds(call), 0)}</td>
                <td>${status(call)}</td>
                <td>
                  ${call.attributes['wandb-run-id'] === undefined ? '' : link(url('/ui/traces', { ...state, 'wandb-run-id': attributeText(call.attributes['wandb-run-id']), page: undefined }), attributeText(call.attributes['wandb-run-id']))}
                </td>
                <td>
                  ${workflowLink(context, typeof call.attributes['workflow-id'] === 'string' ? call.attributes['workflow-id'] : undefined)}
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${shown.length === 0 ? html`<p class="empty">No calls match.</p>` : ''}`,
  );
}

function json(value: unknown, limit = 4000): string {
  const text = JSON.stringify(value, null, 2) ?? 'null';
  return text.length > limit ? `${text.slice(0, limit)}\n… (${text.length - limit} more characters)` : text;
}

/** `/ui/traces/<trace id>`: the call tree (evaluate → predict_and_score → predict + scorers) with inputs, outputs, latency. */
export async function tracePage(context: UiContext, traceId: string, query: URLSearchParams): Promise<string> {
  const scope = scopeOf(context, query);
  const calls = await context.store.calls.query({ ...scope, traceId, limit: 100_000 });
  if (calls.length === 0) {
    throw new NotFoundError(`No trace "${traceId}" in ${scope.entity}/${scope.project}: it has no calls.`);
  }
  const ids = new Set(calls.map((call) => call.id));
  const children = new Map<string, CallRecord[]>();
  const roots: CallRecord[] = [];
  for (const call of calls) {
    if (call.parentId && ids.has(call.parentId))
      children.set(call.parentId, [...(children.get(call.parentId) ?? []), call]);
    else roots.push(call);
  }
  // Depth-first, as the tree reads; only the first callsPerTracePage are rendered.
  const ordered: { call: CallRecord; depth: number }[] = [];
  const pending = roots.map((call) => ({ call, depth: 0 })).reverse();
  while (pending.length > 0 && ordered.length < callsPerTracePage) {
    const next = pending.pop()!;
    ordered.push(next);
    for (const child of [...(children.get(next.call.id) ?? [])].reverse())
      pending.push({ call: child, depth: next.depth + 1 });
  }
  return page(
    { title: `Trace ${traceId}`, section: 'traces' },
    html`<p class="crumbs">
        ${link(url('/ui/traces', { entity: query.get('entity') || undefined, project: query.get('project') || undefined }), 'Traces')}
        / <code>${traceId}</code>
      </p>
      <p class="muted" id="trace-count">
        ${calls.length}
        calls${calls.length > ordered.length ? html`; the first ${ordered.length} in tree order are shown` : ''}.
      </p>
      <table id="trace-tree" class="tree">
        <thead>
          <tr>
            <th>op</th>
            <th>latency ms</th>
            <th>status</th>
            <th>inputs · output · attributes</th>
          </tr>
        </thead>
        <tbody>
          ${ordered.map(
            ({ call, depth }) =>
              html`<tr data-call="${call.id}" data-depth="${depth}">
                <td class="depth-${Math.min(depth, 6)}">
                  <span title="${call.opName}">${opShortName(call.opName)}</span>${
                    call.displayName ? html` <span class="muted">${clipped(call.displayName, 60)}</span>` : ''
                  }
                </td>
                <td class="number">${formatNumber(latencyMilliseconds(call), 0)}</td>
                <td>${status(call)}</td>
                <td>
                  <details>
                    <summary>details</summary>
                    <h4>inputs</h4>
                    <pre class="json">${json(call.inputs)}</pre>
                    <h4>output</h4>
                    <pre class="json">${json(call.output)}</pre>
                    ${
                      call.exception
                        ? html`<h4>exception</h4>
                            <pre class="json">${call.exception}</pre>`
                        : ''
                    }
                    <h4>attributes</h4>
                    <pre class="json">${json(call.attributes)}</pre>
                  </details>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
      <p class="muted">
        Workflow
        ${workflowLink(context, typeof roots[0]?.attributes['workflow-id'] === 'string' ? roots[0].attributes['workflow-id'] : undefined)}.
      </p>`,
  );
}
