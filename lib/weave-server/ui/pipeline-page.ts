import type { PipelineRun } from '../../temporal/pipeline-runs';
import { defaultGatePolicy } from '../../../workflows/contracts/lifecycle';
import { listEvaluationResults, type EvaluationResultEntry } from './evaluation-data';
import { formatNumber, html, link, page, url, type Html } from './html';
import { workflowLink, type UiContext } from './ui-context';

interface NightlyPoint {
  entry: EvaluationResultEntry;
  mean: number;
  regression: boolean | null;
}

/** One app's nightly scores over time as an SVG line; regressions (WeftRegression on the run) drawn as red squares. */
function nightlySvg(app: string, points: NightlyPoint[], metric: string): Html {
  const width = 520;
  const height = 160;
  const left = 36;
  const top = 10;
  const plotWidth = width - left - 10;
  const plotHeight = height - top - 28;
  const x = (index: number) => left + (points.length === 1 ? plotWidth / 2 : (index / (points.length - 1)) * plotWidth);
  const y = (value: number) => top + plotHeight - Math.max(0, Math.min(1, value)) * plotHeight;
  const line = points
    .map((point, index) => `${index === 0 ? 'M' : 'L'}${x(index).toFixed(1)},${y(point.mean).toFixed(1)}`)
    .join(' ');
  return html`<figure class="chart" data-app="${app}">
    <svg
      width="${width}"
      height="${height}"
      viewBox="0 0 ${width} ${height}"
      role="img"
      aria-label="nightly ${metric} of ${app}"
    >
      <line class="axis" x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}"></line>
      <line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${top + plotHeight}"></line>
      <text class="tick" x="${left - 4}" y="${top + 10}" text-anchor="end">1</text>
      <text class="tick" x="${left - 4}" y="${top + plotHeight}" text-anchor="end">0</text>
      <path class="series-line" d="${line}"></path>
      ${points.map((point, index) =>
        point.regression
          ? html`<rect
              class="point regression"
              x="${(x(index) - 5).toFixed(1)}"
              y="${(y(point.mean) - 5).toFixed(1)}"
              width="10"
              height="10"
              ><title>${point.entry.createdAt}: ${metric} ${formatNumber(point.mean)} — regression</title></rect
            >`
          : html`<circle class="point" cx="${x(index).toFixed(1)}" cy="${y(point.mean).toFixed(1)}" r="4"
              ><title>${point.entry.createdAt}: ${metric} ${formatNumber(point.mean)}</title></circle
            >`,
      )}
      <text class="tick" x="${left}" y="${height - 8}">${points[0]?.entry.createdAt.slice(0, 10) ?? ''}</text>
      <text class="tick" x="${left + plotWidth}" y="${height - 8}" text-anchor="end">
        ${points.at(-1)?.entry.createdAt.slice(0, 10) ?? ''}
      </text>
    </svg>
    <figcaption>${app}: nightly ${metric}, ${points.length} runs</figcaption>
  </figure>`;
}

/** `/ui/pipelines`: lifecycle and nightly runs from Temporal visibility, and each app's nightly score over time. */
export async function pipelinesPage(context: UiContext): Promise<string> {
  let runs: PipelineRun[] = [];
  let problem: string | undefined;
  if (context.pipelines) {
    try {
      runs = await context.pipelines.list(200);
    } catch (error) {
      problem = (error as Error).message;
    }
  } else {
    problem = 'No Temporal connection is configured for this server.';
  }
  const regressionByWorkflow = new Map(runs.map((run) => [run.workflowId, run.regression]));
  const metric = defaultGatePolicy.metric;
  const nightly = (await listEvaluationResults(context.store, { entity: context.entity, project: context.project }))
    .filter((entry) => entry.value.workflow_id?.startsWith('reevaluate/') && entry.app !== undefined)
    .reverse();
  const byApp = new Map<string, NightlyPoint[]>();
  for (const entry of nightly) {
    const workflowId = entry.value.workflow_id!.replace(/\/evaluate$/, '');
    const mean = entry.value.summary[metric]?.mean;
    if (typeof mean !== 'number') continue;
    const points = byApp.get(entry.app!) ?? [];
    points.push({ entry, mean, regression: regressionByWorkflow.get(workflowId) ?? null });
    byApp.set(entry.app!, points);
  }
  const runsTable = html`<table class="sortable" id="pipeline-runs">
    <thead>
      <tr>
        <th>workflow</th>
        <th>type</th>
        <th>status</th>
        <th>stage</th>
        <th>app</th>
        <th>gate</th>
        <th>score</th>
        <th>regression</th>
        <th>started</th>
        <th>closed</th>
      </tr>
    </thead>
    <tbody>
      ${runs.map(
        (run) =>
          html`<tr data-workflow="${run.workflowId}">
            <td>${workflowLink(context, run.workflowId)}</td>
            <td>${run.workflowType}</td>
            <td>${run.status}</td>
            <td>${run.stage ?? ''}</td>
            <td>${run.app ? link(url('/ui/evaluations', { app: run.app }), run.app) : ''}</td>
            <td>${run.gateDecision ? html`<span class="badge ${run.gateDecision}">${run.gateDecision}</span>` : ''}</td>
            <td class="number">${formatNumber(run.score)}</td>
            <td>${run.regression === null ? '' : run.regression ? html`<span class="badge fail">yes</span>` : 'no'}</td>
            <td>${run.startTime}</td>
            <td>${run.closeTime ?? ''}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
  return page(
    { title: 'Pipelines and schedules', section: 'pipelines' },
    html`<h2>Runs</h2>
      <p class="muted">
        ${context.pipelines ? context.pipelines.description : ''}: lifecycle and nightly re-evaluation runs with their
        search attributes (WeftStage, WeftApp, WeftGateDecision, WeftScore, WeftRegression).
      </p>
      ${problem ? html`<p class="error" id="pipelines-problem">${problem}</p>` : runsTable}
      <h2>Nightly scores</h2>
      ${
        byApp.size === 0
          ? html`<p class="empty">
              No nightly re-evaluation results yet (<code>weft schedule create</code> starts them).
            </p>`
          : html`<div class="charts">
              ${[...byApp.entries()].map(([app, points]) => nightlySvg(app, points, metric))}
            </div>`
      }`,
  );
}
