import { parseRef, type LineageGraph, type LineageNode } from '../../lineage';
import { html, link, page, url, type Html } from './html';
import { workflowLink, type UiContext } from './ui-context';

const nodeWidth = 200;
const nodeHeight = 42;
const columnGap = 50;
const rowGap = 14;

/** A short label for a node: `name:vN`, `Registry/collection:vN`, `Name:digest…`, `run fine-tune`. */
export function nodeLabel(node: LineageNode): string {
  if (node.kind === 'run') return `run ${node.jobType} (${node.state})`;
  try {
    const parsed = parseRef(node.ref);
    if (parsed.kind === 'artifact') return `${parsed.name}:${parsed.version ?? ''}`;
    if (parsed.kind === 'registry') return `${parsed.registry}/${parsed.collection}:${parsed.version ?? ''}`;
    if (parsed.kind === 'object') return `${parsed.name}:${parsed.digest.slice(0, 8)}`;
  } catch {
    // Fall through to the raw id.
  }
  return node.id;
}

function nodeKindLabel(node: LineageNode): string {
  if (node.kind === 'run') return 'run';
  if (node.kind === 'object') return node.typeName ?? 'object';
  return node.type;
}

function nodeHref(node: LineageNode): string {
  if (node.kind === 'run') return url('/ui/traces', { 'wandb-run-id': node.id.slice('run:'.length) });
  return url('/ui/lineage', { ref: node.ref });
}

/** Layers by longest path from the sources (edges point downstream), so every edge runs left to right. */
function layers(graph: LineageGraph): Map<string, number> {
  const layer = new Map(graph.nodes.map((node) => [node.id, 0]));
  // At most one pass per node: a cycle (which the store does not create) cannot loop forever.
  for (let pass = 0; pass < graph.nodes.length; pass += 1) {
    let changed = false;
    for (const edge of graph.edges) {
      const next = (layer.get(edge.from) ?? 0) + 1;
      if (layer.has(edge.to) && next > layer.get(edge.to)!) {
        layer.set(edge.to, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  // A source sits just left of its nearest consumer (the embedding model beside the ChatModel, not under the dataset),
  // so its edge does not run across other columns.
  const targets = new Map<string, number[]>();
  const hasIncoming = new Set(graph.edges.map((edge) => edge.to));
  for (const edge of graph.edges) targets.set(edge.from, [...(targets.get(edge.from) ?? []), layer.get(edge.to) ?? 0]);
  for (const node of graph.nodes) {
    if (hasIncoming.has(node.id) || !targets.has(node.id)) continue;
    layer.set(node.id, Math.max(0, Math.min(...targets.get(node.id)!) - 1));
  }
  return layer;
}

/** The graph as an SVG: columns by layer, nodes as links, edges as arrows titled with their relation. */
export function lineageSvg(graph: LineageGraph): Html {
  if (graph.nodes.length === 0) return html``;
  const layerOf = layers(graph);
  const columns = new Map<number, LineageNode[]>();
  for (const node of graph.nodes) {
    const column = layerOf.get(node.id) ?? 0;
    columns.set(column, [...(columns.get(column) ?? []), node]);
  }
  const position = new Map<string, { x: number; y: number }>();
  for (const [column, nodes] of columns) {
    nodes.forEach((node, row) =>
      position.set(node.id, { x: 10 + column * (nodeWidth + columnGap), y: 10 + row * (nodeHeight + rowGap) }),
    );
  }
  const width = 20 + (Math.max(...columns.keys()) + 1) * (nodeWidth + columnGap) - columnGap;
  const height = 20 + Math.max(...[...columns.values()].map((nodes) => nodes.length)) * (nodeHeight + rowGap) - rowGap;
  const edges = graph.edges.map((edge) => {
    const from = position.get(edge.from);
    const to = position.get(edge.to);
    if (!from || !to) return '';
    const x1 = from.x + nodeWidth;
    const y1 = from.y + nodeHeight / 2;
    const x2 = to.x;
    const y2 = to.y + nodeHeight / 2;
    const middle = (x1 + x2) / 2;
    return html`<path
      class="edge edge-${edge.relation}"
      d="M${x1},${y1} C${middle},${y1} ${middle},${y2} ${x2 - 4},${y2}"
      marker-end="url(#arrow)"
      ><title>${edge.from} —${edge.relation}→ ${edge.to}</title></path
    >`;
  });
  const nodes = graph.nodes.map((node) => {
    const at = position.get(node.id)!;
    const label = nodeLabel(node);
    return html`<a
      href="${nodeHref(node)}"
      class="node node-${node.kind}${node.id === graph.root ? ' root' : ''}"
      data-node="${node.id}"
    >
      <title>${node.id}</title>
      <rect x="${at.x}" y="${at.y}" width="${nodeWidth}" height="${nodeHeight}" rx="6"></rect>
      <text x="${at.x + 8}" y="${at.y + 17}" class="node-label"
        >${label.length > 30 ? `${label.slice(0, 29)}…` : label}</text
      >
      <text x="${at.x + 8}" y="${at.y + 33}" class="node-kind">${nodeKindLabel(node)}</text>
    </a>`;
  });
  return html`<svg
    class="lineage"
    width="${width}"
    height="${height}"
    viewBox="0 0 ${width} ${height}"
    role="img"
    aria-label="lineage graph"
  >
    <defs>
      <marker
        id="arrow"
        viewBox="0 0 10 10"
        refX="9"
        refY="5"
        markerWidth="7"
        markerHeight="7"
        orient="auto-start-reverse"
      >
        <path d="M0,0 L10,5 L0,10 z" class="arrow"></path>
      </marker>
    </defs>
    ${edges} ${nodes}
  </svg>`;
}

/** What the root is: an object's value, an artifact's metadata, a registry version's artifact. */
async function rootDetails(context: UiContext, graph: LineageGraph): Promise<Html> {
  const root = graph.nodes.find((node) => node.id === graph.root);
  if (!root || root.kind === 'run') return html``;
  if (root.kind === 'object') {
    const object = await context.store.objects.get(root.ref);
    const value = object.value as { _type?: unknown; workflow_id?: unknown } | null;
    const isResult = value?._type === 'EvaluationResult';
    return html`<p>
        ${root.typeName ?? 'object'} <code>${object.ref}</code>, v${object.version}, created ${object.createdAt}.
        ${
          isResult && typeof value?.workflow_id === 'string'
            ? html` ${link(url('/ui/evaluations', { workflow: value.workflow_id }), 'The evaluation run it belongs to')}.`
            : ''
        }
        ${typeof value?.workflow_id === 'string' ? html` Workflow ${workflowLink(context, value.workflow_id)}.` : ''}
      </p>
      <details>
        <summary>Value</summary>
        <pre class="json">${clip(JSON.stringify(object.value, null, 2))}</pre>
      </details>`;
  }
  const version =
    root.kind === 'registry'
      ? (await context.store.registry.resolve(root.ref)).artifact
      : await context.store.artifacts.get(root.ref);
  const workflowId = typeof version.metadata.workflow_id === 'string' ? version.metadata.workflow_id : undefined;
  return html`<p>
      ${root.kind === 'registry' ? html`Registry version of ` : ''}artifact <code>${version.ref}</code>, type
      ${version.type}, aliases ${version.aliases.join(' ') || '—'}, created
      ${version.createdAt}${version.description ? html`: ${version.description}` : ''}.${
        workflowId ? html` Workflow ${workflowLink(context, workflowId)}.` : ''
      }
    </p>
    <details>
      <summary>Metadata</summary>
      <pre class="json">${clip(JSON.stringify(version.metadata, null, 2))}</pre>
    </details>`;
}

function clip(text: string, limit = 20_000): string {
  return text.length > limit ? `${text.slice(0, limit)}\n… (${text.length - limit} more characters)` : text;
}

/** `/ui/lineage?ref=…`: the graph upstream and downstream of a ref, nodes clickable. */
export async function lineagePage(context: UiContext, query: URLSearchParams): Promise<string> {
  const ref = query.get('ref') ?? '';
  const form = html`<form method="get" action="/ui/lineage" class="inline">
    <label
      >Ref
      <input type="text" name="ref" value="${ref}" size="90" placeholder="wandb-artifact:///… or weave:///…/object/…"
    /></label>
    <button type="submit">Show lineage</button>
  </form>`;
  if (!ref) {
    return page(
      { title: 'Lineage', section: 'lineage' },
      html`${form}
        <p class="muted">
          Any artifact, registry version or Weave object ref (ChatModel, RagModel, EvaluationResult). Registry and
          evaluation pages link here.
        </p>`,
    );
  }
  const graph = await context.store.lineage.walk(ref, { direction: 'both', maxDepth: 12 });
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const nodeCell = (id: string) => {
    const node = byId.get(id);
    return node ? link(nodeHref(node), html`<code>${id}</code>`) : html`<code>${id}</code>`;
  };
  return page(
    { title: 'Lineage', section: 'lineage' },
    html`${form}
      <p>
        Lineage of <code id="lineage-root">${graph.root}</code>: ${graph.nodes.length} nodes, ${graph.edges.length}
        edges (upstream on the left, downstream on the right).
      </p>
      ${await rootDetails(context, graph)}
      <div class="graph">${lineageSvg(graph)}</div>
      <h2>Edges</h2>
      <table class="sortable" id="edges">
        <thead>
          <tr>
            <th>from</th>
            <th>relation</th>
            <th>to</th>
          </tr>
        </thead>
        <tbody>
          ${graph.edges.map(
            (edge) =>
              html`<tr>
                <td>${nodeCell(edge.from)}</td>
                <td>${edge.relation}</td>
                <td>${nodeCell(edge.to)}</td>
              </tr>`,
          )}
        </tbody>
      </table>`,
  );
}
