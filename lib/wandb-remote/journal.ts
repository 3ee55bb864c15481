import type { LineageStore } from '../lineage';
import type { WandbRemoteConfig } from './config';

/** What kind of local item a publication is. */
export type PublicationKind = 'run' | 'artifact' | 'link' | 'production' | 'evaluation';

/** One local item and what it became on one W&B server. */
export interface Publication {
  /** `<kind>:<local ref or id>`: the key a retry or `weft sync` looks the item up by. */
  item: string;
  kind: PublicationKind;
  workflowId: string | null;
  localRef: string;
  remoteRef: string | null;
  remoteId: string | null;
  /** `published`, or `superseded` (a production move that lost to a newer champion). */
  state: 'published' | 'superseded';
  detail: string | null;
  updatedAt: string;
}

interface PublicationRow {
  item: string;
  kind: PublicationKind;
  workflow_id: string | null;
  local_ref: string;
  remote_ref: string | null;
  remote_id: string | null;
  state: 'published' | 'superseded';
  detail: string | null;
  updated_at: string;
}

/** The server a publication belongs to: the same item published to two servers (or entities) is two rows. */
export function serverKey(config: WandbRemoteConfig): string {
  return `${config.baseUrl}|${config.entity}/${config.project}|${config.org}`;
}

const toPublication = (row: PublicationRow): Publication => ({
  item: row.item,
  kind: row.kind,
  workflowId: row.workflow_id,
  localRef: row.local_ref,
  remoteRef: row.remote_ref,
  remoteId: row.remote_id,
  state: row.state,
  detail: row.detail,
  updatedAt: row.updated_at,
});

/**
 * The local record of remote writes, kept in the lineage store (the system of record). A row is written after the
 * remote write succeeded; a crash between the two repeats the (idempotent) remote write, never skips it.
 */
export class PublicationJournal {
  private readonly server: string;

  constructor(
    private readonly store: LineageStore,
    config: WandbRemoteConfig,
  ) {
    this.server = serverKey(config);
  }

  async get(item: string): Promise<Publication | undefined> {
    const [row] = await this.store.database.query<PublicationRow>(
      'SELECT * FROM wandb_publications WHERE server = ? AND item = ?',
      [this.server, item],
    );
    return row ? toPublication(row) : undefined;
  }

  async record(publication: Omit<Publication, 'updatedAt'>): Promise<void> {
    await this.store.database.execute(
      `INSERT INTO wandb_publications (server, item, kind, workflow_id, local_ref, remote_ref, remote_id, state, detail, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (server, item) DO UPDATE SET remote_ref = excluded.remote_ref, remote_id = excluded.remote_id,
         state = excluded.state, detail = excluded.detail, updated_at = excluded.updated_at,
         workflow_id = COALESCE(wandb_publications.workflow_id, excluded.workflow_id)`,
      [
        this.server,
        publication.item,
        publication.kind,
        publication.workflowId,
        publication.localRef,
        publication.remoteRef,
        publication.remoteId,
        publication.state,
        publication.detail,
        new Date().toISOString(),
      ],
    );
  }

  /** Every publication of one workflow (a pipeline run and its evaluation child), for `weft status`. */
  async ofWorkflow(workflowId: string): Promise<Publication[]> {
    const rows = await this.store.database.query<PublicationRow>(
      'SELECT * FROM wandb_publications WHERE server = ? AND (workflow_id = ? OR workflow_id LIKE ?) ORDER BY updated_at',
      [this.server, workflowId, `${workflowId}/%`],
    );
    return rows.map(toPublication);
  }
}
