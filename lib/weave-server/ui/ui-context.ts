import type { LineageStore } from '../../lineage';
import type { PipelineRunSource } from '../../temporal/pipeline-runs';
import { html, type Html } from './html';

export interface UiContext {
  store: LineageStore;
  /** The org registries are listed in. */
  org: string;
  /** The entity/project pages show when the URL names none. */
  entity: string;
  project: string;
  /** Base URL of the Temporal Web UI (`http://127.0.0.1:8233`); workflow ids link there when set. */
  temporalUiUrl?: string;
  temporalNamespace: string;
  pipelines?: PipelineRunSource;
}

/** A workflow id, linked to its page in the Temporal Web UI when one is configured. */
export function workflowLink(context: UiContext, workflowId: string | null | undefined): Html {
  if (!workflowId) return html`—`;
  if (!context.temporalUiUrl) return html`<code>${workflowId}</code>`;
  const href = `${context.temporalUiUrl}/namespaces/${encodeURIComponent(context.temporalNamespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return html`<a href="${href}" class="external"><code>${workflowId}</code></a>`;
}
