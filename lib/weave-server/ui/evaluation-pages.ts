import { scoreNames, type ScoreName } from '../../../workflows/contracts/evaluation';
import { defaultGatePolicy, type GatePolicy } from '../../../workflows/contracts/lifecycle';
import { UiInputError } from '../errors';
import { histogramSvg } from './charts';
import {
  cachedComparison,
  listEvaluationResults,
  type ComparedRow,
  type EvaluationComparison,
  type EvaluationResultEntry,
} from './evaluation-data';
import { clipped, formatNumber, formatSigned, html, link, page, url, type Html } from './html';
import { workflowLink, type UiContext } from './ui-context';

/** Rows of the per-row table on one page unless `per_page` says otherwise (at most 10,000). */
export const defaultRowsPerPage = 500;

function shortRef(ref: string | undefined): string {
  if (!ref) return '—';
  const tail = ref.slice(ref.lastIndexOf('/') + 1);
  const colon = tail.indexOf(':');
  return colon === -1 ? tail : `${tail.slice(0, colon)}:${tail.slice(colon + 1, colon + 9)}`;
}

function refLink(ref: string | undefined): Html {
  if (!ref) return html`—`;
  return link(url('/ui/lineage', { ref }), html`<code>${shortRef(ref)}</code>`, { title: ref });
}

function orderedScorers(names: Iterable<string>): string[] {
  const known = new Set(names);
  return [
    ...scoreNames.filter((name) => known.has(name)),
    ...[...known].filter((name) => !(scoreNames as readonly string[]).includes(name)),
  ];
}

function scopeOf(context: UiContext, query: URLSearchParams): { entity: string; project: string } {
  return { entity: query.get('entity') || context.entity, project: query.get('project') || context.project };
}

/** Champion first, then the challenger(s): the compare page's baseline is its first ref. */
function compareHref(entries: EvaluationResultEntry[]): string {
  const rank = (entry: EvaluationResultEntry) => (entry.value.label === 'champion' ? 0 : 1);
  return url('/ui/evaluations/compare', {
    ids: [...entries].sort((a, b) => rank(a) - rank(b)).map((entry) => entry.ref),
  });
}

/** `/ui/evaluations?app=…`: the EvaluationResults of a project (or one app), grouped by the evaluation run. */
export async function evaluationsPage(context: UiContext, query: URLSearchParams): Promise<string> {
  const scope = scopeOf(context, query);
  const app = query.get('app') || undefined;
  const workflow = query.get('workflow') || undefined;
  const all = await listEvaluationResults(context.store, scope);
  const apps = [...new Set(all.map((entry) => entry.app).filter((name): name is string => name !== undefined))].sort();
  const entries = all.filter(
    (entry) =>
      (app === undefined || entry.app === app) && (workflow === undefined || entry.value.workflow_id === workflow),
  );
  const scorers = orderedScorers(entries.flatMap((entry) => Object.keys(entry.value.summary)));
  const runs = new Map<string, EvaluationResultEntry[]>();
  for (const entry of entries) {
    const key = entry.value.workflow_id ?? entry.ref;
    runs.set(key, [...(runs.get(key) ?? []), entry]);
  }
  const appLinks = html`<p class="filters">
    App: ${link(url('/ui/evaluations', {}), 'all', { class: app ? '' : 'active' })}
    ${apps.map(
      (name) => html`${link(url('/ui/evaluations', { app: name }), name, { class: name === app ? 'active' : '' })} `,
    )}
  </p>`;
  const rowsHtml = [...runs.values()].flatMap((group) =>
    group.map(
      (entry, index) =>
        html`<tr data-ref="${entry.ref}">
          <td><input type="checkbox" name="ids" value="${entry.ref}" aria-label="select ${shortRef(entry.ref)}" /></td>
          <td>${refLink(entry.ref)}</td>
          <td>${entry.app ?? '—'}</td>
          <td>${entry.value.label ?? ''}</td>
          <td>${refLink(entry.value.model)}</td>
          <td>${refLink(entry.value.dataset)}</td>
          <td class="number">${entry.value.rows.length}</td>
          ${scorers.map((scorer) => {
            const summary = entry.value.summary[scorer as ScoreName];
            return html`<td
              class="number"
              data-scorer="${scorer}"
              title="95% CI [${formatNumber(summary?.ciLow)}, ${formatNumber(summary?.ciHigh)}]"
            >
              ${formatNumber(summary?.mean)}
            </td>`;
          })}
          <td>${entry.createdAt}</td>
          <td>
            ${index === 0 ? workflowLink(context, entry.value.workflow_id) : ''}${
              index === 0 && group.length > 1
                ? html` ${link(compareHref(group), 'compare', { class: 'compare-run' })}`
                : ''
            }
          </td>
        </tr>`,
    ),
  );
  return page(
    { title: app ? `Evaluations of ${app}` : 'Evaluations', section: 'evaluations' },
    html`${appLinks}
      <p class="muted">
        ${entries.length} EvaluationResults in <code>${scope.entity}/${scope.project}</code>${
          workflow ? html` from workflow ${workflowLink(context, workflow)}` : ''
        }.
        Tick two or more on one dataset to compare them; the first ticked is the baseline.
      </p>
      <form method="get" action="/ui/evaluations/compare">
        <table class="sortable" id="evaluations">
          <thead>
            <tr>
              <th></th>
              <th>result</th>
              <th>app</th>
              <th>label</th>
              <th>model</th>
              <th>dataset</th>
              <th>rows</th>
              ${scorers.map((scorer) => html`<th>${scorer}</th>`)}
              <th>created</th>
              <th>workflow</th>
            </tr>
          </thead>
          <tbody>
            ${rowsHtml}
          </tbody>
        </table>
        <p><button type="submit">Compare selected</button></p>
      </form>
      ${entries.length === 0 ? html`<p class="empty">No EvaluationResults here yet.</p>` : ''}`,
  );
}

/** The gate policy of a compare page: the pipeline's default, with `metric` and `margin` from the URL. */
function policyOf(query: URLSearchParams): GatePolicy {
  const metric = query.get('metric') || defaultGatePolicy.metric;
  if (!(scoreNames as readonly string[]).includes(metric) || metric === 'latency_ms') {
    throw new UiInputError(
      `metric must be one of ${scoreNames.filter((name) => name !== 'latency_ms').join(', ')}; got "${metric}".`,
    );
  }
  const marginText = query.get('margin');
  const margin = marginText === null || marginText === '' ? defaultGatePolicy.margin : Number(marginText);
  if (!Number.isFinite(margin) || margin < -1 || margin > 1) {
    throw new UiInputError(`margin must be a number from -1 to 1; got "${marginText}".`);
  }
  return { ...defaultGatePolicy, metric: metric as GatePolicy['metric'], margin };
}

function positiveInteger(query: URLSearchParams, name: string, fallback: number, maximum: number): number {
  const text = query.get(name);
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > maximum) {
    throw new UiInputError(`${name} must be a whole number from 1 to ${maximum}; got "${text}".`);
  }
  return value;
}

const rowFilters = ['all', 'regressions', 'improvements', 'changed'] as const;
const rowSorts = ['row', 'delta', '-delta'] as const;

/** The per-row table's rows after the URL's filter, search and sort (all on the server: stable URLs, any row count). */
export function selectRows(
  comparison: EvaluationComparison,
  options: { only: (typeof rowFilters)[number]; search: string; sort: (typeof rowSorts)[number] },
): ComparedRow[] {
  const worst = (row: ComparedRow) =>
    Math.min(...row.differences.map((value) => (Number.isNaN(value) ? Infinity : value)));
  const best = (row: ComparedRow) =>
    Math.max(...row.differences.map((value) => (Number.isNaN(value) ? -Infinity : value)));
  const needle = options.search.toLowerCase();
  let rows = comparison.rows.filter((row) => {
    if (options.only === 'regressions' && !(worst(row) < 0)) return false;
    if (options.only === 'improvements' && !(best(row) > 0)) return false;
    if (options.only === 'changed' && !row.differences.some((value) => value !== 0 && !Number.isNaN(value)))
      return false;
    if (!needle) return true;
    return [
      row.id,
      row.question,
      row.goldAnswer,
      ...row.predictions.map((prediction) => prediction?.answer ?? ''),
    ].some((text) => text.toLowerCase().includes(needle));
  });
  if (options.sort !== 'row') {
    const sign = options.sort === 'delta' ? 1 : -1;
    const key = (row: ComparedRow) => (Number.isNaN(row.differences[0]!) ? Infinity : sign * row.differences[0]!);
    rows = [...rows].sort((left, right) => key(left) - key(right) || left.rowIndex - right.rowIndex);
  }
  return rows;
}

function choice<T extends string>(query: URLSearchParams, name: string, allowed: readonly T[]): T {
  const value = query.get(name) || allowed[0]!;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UiInputError(`${name} must be one of ${allowed.join(', ')}; got "${value}".`);
  }
  return value as T;
}

/** `/ui/evaluations/compare?ids=<ref>&ids=<ref>`: summary with CIs, paired differences, gate, chart and per-row table. */
export async function comparePage(context: UiContext, query: URLSearchParams): Promise<string> {
  const refs = query
    .getAll('ids')
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter(Boolean);
  const policy = policyOf(query);
  const only = choice(query, 'only', rowFilters);
  const sort = choice(query, 'sort', rowSorts);
  const search = query.get('q') ?? '';
  const perPage = positiveInteger(query, 'per_page', defaultRowsPerPage, 10_000);
  const pageNumber = positiveInteger(query, 'page', 1, 1_000_000);
  const comparison = await cachedComparison(context.store, refs, policy);
  const letters = comparison.results.map(
    (_, index) => String.fromCharCode(65 + (index % 26)) + (index >= 26 ? index : ''),
  );
  const scorers = orderedScorers(comparison.scorers);

  const header = html`<table id="compared-results">
      <thead>
        <tr>
          <th></th>
          <th>result</th>
          <th>label</th>
          <th>model</th>
          <th>rows</th>
          <th>workflow</th>
        </tr>
      </thead>
      <tbody>
        ${comparison.results.map(
          (result, index) =>
            html`<tr>
              <th>${letters[index]}${index === 0 ? ' (baseline)' : ''}</th>
              <td>${refLink(result.ref)}</td>
              <td>${result.value.label ?? ''}</td>
              <td>${refLink(result.value.model)}</td>
              <td class="number">${result.value.rows.length}</td>
              <td>${workflowLink(context, result.value.workflow_id)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <p class="muted">Dataset ${refLink(comparison.results[0]!.value.dataset)}.</p>`;

  const summary = html`<h2>Summary: mean [95% CI]</h2>
    <table id="summary">
      <thead>
        <tr>
          <th>score</th>
          ${letters.map((letter) => html`<th>${letter}</th>`)}${letters
            .slice(1)
            .map((letter) => html`<th>${letter} − A (paired) [95% CI]</th>`)}
        </tr>
      </thead>
      <tbody>
        ${scorers.map(
          (scorer) =>
            html`<tr data-scorer="${scorer}">
              <th>${scorer}</th>
              ${comparison.results.map((result, index) => {
                const score = result.value.summary[scorer as ScoreName];
                return html`<td class="number" data-result="${index}" data-mean="${score?.mean ?? ''}">
                  ${formatNumber(score?.mean)}
                  <span class="ci">[${formatNumber(score?.ciLow)}, ${formatNumber(score?.ciHigh)}]</span>
                </td>`;
              })}${comparison.differences.map((differences, index) => {
                const difference = differences.find((item) => item.scorer === scorer);
                const tone =
                  difference && difference.ciLow > 0 ? 'better' : difference && difference.ciHigh < 0 ? 'worse' : '';
                return html`<td
                  class="number ${tone}"
                  data-difference="${index + 1}"
                  data-mean="${difference?.mean ?? ''}"
                >
                  ${formatSigned(difference?.mean)}
                  <span class="ci">[${formatSigned(difference?.ciLow)}, ${formatSigned(difference?.ciHigh)}]</span>
                </td>`;
              })}
            </tr>`,
        )}
      </tbody>
    </table>`;

  const gates = html`<h2>Gate</h2>
    <p class="muted">
      The pipeline's gate (lib/scoring/gate.ts) with ${letters.length > 2 ? 'each result' : 'B'} as challenger and A as
      champion: paired bootstrap of ${policy.metric}, ${Math.round(policy.confidence * 100)}% interval,
      ${policy.resamples} resamples; passes when the lower bound is above the margin ${policy.margin}.
      ${link(url('/ui/evaluations/compare', { ids: refs, metric: policy.metric, margin: 0.01 }), 'margin 0.01')}
    </p>
    <ul id="gates">
      ${comparison.gates.map(
        (gate, index) =>
          html`<li data-challenger="${letters[index + 1]}">
            <span class="badge ${gate.decision}">${gate.decision}</span> ${letters[index + 1]} vs A: ${gate.reason}
          </li>`,
      )}
    </ul>`;

  const metricValues = comparison.results.map((result) => ({
    label: letters[comparison.results.indexOf(result)]!,
    values: result.value.rows.map((row) => row.scores[policy.metric] ?? Number.NaN),
  }));
  const differenceValues = comparison.differences.map((_, index) => ({
    label: `${letters[index + 1]} − A`,
    values: comparison.rows.map((row) => row.differences[index]!),
  }));
  const charts = html`<h2>Score distribution</h2>
    <div class="charts">
      ${histogramSvg(metricValues, { min: 0, max: 1, bins: 10, caption: `${policy.metric} per row` })}
      ${histogramSvg(differenceValues, { min: -1, max: 1, bins: 20, caption: `paired difference of ${policy.metric} per row` })}
    </div>`;

  const selected = selectRows(comparison, { only, search, sort });
  const pageCount = Math.max(1, Math.ceil(selected.length / perPage));
  if (pageNumber > pageCount) {
    throw new UiInputError(`page ${pageNumber} is past the last page (${pageCount}) of ${selected.length} rows.`);
  }
  const shown = selected.slice((pageNumber - 1) * perPage, pageNumber * perPage);
  const state = {
    ids: refs,
    metric: policy.metric,
    margin: policy.margin || undefined,
    only,
    sort,
    q: search,
    per_page: perPage === defaultRowsPerPage ? undefined : perPage,
  };
  const pageLink = (target: number, text: string) =>
    link(url('/ui/evaluations/compare', { ...state, page: target === 1 ? undefined : target }), text);
  const sortLink = (target: (typeof rowSorts)[number], text: string) =>
    link(url('/ui/evaluations/compare', { ...state, sort: target === 'row' ? undefined : target }), text, {
      class: sort === target ? 'active' : '',
    });
  const controls = html`<form method="get" action="/ui/evaluations/compare" class="controls" id="row-controls">
    ${refs.map((ref) => html`<input type="hidden" name="ids" value="${ref}" />`)}
    <label
      >metric
      <select name="metric">
        ${scoreNames
          .filter((name) => name !== 'latency_ms' && comparison.scorers.includes(name))
          .map((name) => html`<option${name === policy.metric ? html` selected` : ''}>${name}</option>`)}
      </select></label
    >
    <label
      >rows
      <select name="only">
        ${rowFilters.map((name) => html`<option${name === only ? html` selected` : ''}>${name}</option>`)}
      </select></label
    >
    <label
      >sort
      <select name="sort">
        ${rowSorts.map((name) => html`<option${name === sort ? html` selected` : ''}>${name}</option>`)}
      </select></label
    >
    <label>search <input type="search" name="q" value="${search}" /></label>
    <button type="submit">Apply</button>
    <span class="muted"
      >Sort: ${sortLink('row', 'row')} · ${sortLink('delta', 'worst first')} · ${sortLink('-delta', 'best first')}.
      Filter this page as you type: <input type="search" id="row-filter" placeholder="text on this page"
    /></span>
  </form>`;
  const rowHtml = (row: ComparedRow) =>
    html`<tr
      data-row="${row.rowIndex}"
      data-delta="${row.differences[0] ?? ''}"
      ${row.differences.some((value) => value < 0) ? html` class="regression"` : ''}
    >
      <td class="number">${row.rowIndex}</td>
      <td>${clipped(row.question, 160)}</td>
      <td>${clipped(row.goldAnswer, 80)}</td>
      ${row.predictions.map((prediction) =>
        prediction
          ? html`<td>${clipped(prediction.answer ?? '—', 160)}</td>
              <td class="scores">
                ${scorers
                  .filter((scorer) => scorer in prediction.scores)
                  .map(
                    (scorer) =>
                      html`<span data-scorer="${scorer}" ${scorer === policy.metric ? html` class="metric"` : ''}
                        >${scorer} ${formatNumber(prediction.scores[scorer], scorer === 'latency_ms' ? 0 : 2)}</span
                      > `,
                  )}
              </td>
              <td class="docs">${prediction.documents.join(' ')}</td>`
          : html`<td colspan="3" class="muted">not in this result</td>`,
      )}
      ${row.differences.map(
        (difference) =>
          html`<td class="number ${difference < 0 ? 'worse' : difference > 0 ? 'better' : ''}">
            ${formatSigned(difference, 2)}
          </td>`,
      )}
    </tr>`;
  const table = html`<h2>Rows</h2>
    ${controls}
    <p id="row-count">
      ${selected.length} of ${comparison.rows.length}
      rows${only === 'all' ? '' : ` (${only})`}${search ? html` matching “${search}”` : ''}; page ${pageNumber} of
      ${pageCount}. ${pageNumber > 1 ? pageLink(pageNumber - 1, '← previous') : ''}
      ${pageNumber < pageCount ? pageLink(pageNumber + 1, 'next →') : ''}
    </p>
    <table id="rows" class="rows">
      <thead>
        <tr>
          <th>row</th>
          <th>question</th>
          <th>gold answer</th>
          ${letters.map(
            (letter) =>
              html`<th>${letter} answer</th>
                <th>${letter} scores</th>
                <th>${letter} retrieved</th>`,
          )}${letters.slice(1).map((letter) => html`<th>Δ ${policy.metric} ${letter} − A</th>`)}
        </tr>
      </thead>
      <tbody>
        ${shown.map(rowHtml)}
      </tbody>
    </table>`;

  return page(
    { title: `Compare ${comparison.results.length} evaluations`, section: 'evaluations' },
    html`${header}${summary}${gates}${charts}${table}`,
  );
}
