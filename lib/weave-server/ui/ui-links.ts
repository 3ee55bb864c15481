/**
 * Stable web UI URLs for refs, so a CLI line or a Temporal memo can link to the page that shows a record. The base is
 * where `weft serve` is reachable (WEFT_SERVE_URL); every page needs a login (the serve token) once per browser.
 */
export interface UiLinks {
  lineage(ref: string): string;
  compare(evaluationResultRefs: string[]): string;
  collection(registry: string, collection: string): string;
  traces(filter: { wandbRunId?: string; op?: string }): string;
}

export function uiLinks(serveUrl: string | undefined): UiLinks | undefined {
  if (!serveUrl) return undefined;
  const base = serveUrl.replace(/\/+$/, '');
  const withQuery = (path: string, query: [string, string][]) =>
    `${base}${path}${query.length ? `?${new URLSearchParams(query).toString()}` : ''}`;
  return {
    lineage: (ref) => withQuery('/ui/lineage', [['ref', ref]]),
    compare: (refs) =>
      withQuery(
        '/ui/evaluations/compare',
        refs.map((ref) => ['ids', ref]),
      ),
    collection: (registry, collection) =>
      `${base}/ui/registries/${encodeURIComponent(registry)}/${encodeURIComponent(collection)}`,
    traces: (filter) =>
      withQuery('/ui/traces', [
        ...(filter.wandbRunId ? ([['wandb-run-id', filter.wandbRunId]] as [string, string][]) : []),
        ...(filter.op ? ([['op', filter.op]] as [string, string][]) : []),
      ]),
  };
}
