import type { ArtifactStore } from './artifacts';
import { InvalidValueError } from './errors';
import { formatRef, parseRefOfKind } from './refs';
import type { RegistryStore } from './registry';
import type { StoreContext } from './store-context';

export type LineageNode =
  | { kind: 'artifact'; id: string; ref: string; type: string }
  | { kind: 'object'; id: string; ref: string; typeName: string | null }
  | { kind: 'registry'; id: string; ref: string; type: string }
  | { kind: 'run'; id: string; jobType: string; state: string };

/**
 * `from` → `to`: an artifact used by a run ('input'), a run that logged an artifact ('output'), an artifact
 * linked into a registry ('link'), a version whose exact ref a Weave object's value holds ('reference').
 */
export interface LineageEdge {
  from: string;
  to: string;
  relation: 'input' | 'output' | 'link' | 'reference';
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

export interface LineageGraph {
  root: string;
  nodes: LineageNode[];
  edges: LineageEdge[];
}

export interface WalkOptions {
  /** 'upstream': what produced it; 'downstream': where it is used; 'both' (default). */
  direction?: 'upstream' | 'downstream' | 'both';
  /** Hops to follow from the root; default 10. */
  maxDepth?: number;
}

/** Walks the artifact ↔ run ↔ registry graph from a ref in either direction. */
export class LineageWalker {
  constructor(
    private readonly context: StoreContext,
    private readonly artifacts: ArtifactStore,
    private readonly registry: RegistryStore,
  ) {}

  /** Node ids are artifact refs (`…:vN`), registry refs (`…:vN`) and `run:<id>`. */
  async walk(ref: string, options: WalkOptions = {}): Promise<LineageGraph> {
    const direction = options.direction ?? 'both';
    if (!['upstream', 'downstream', 'both'].includes(direction)) {
      throw new InvalidValueError(
        `The lineage direction must be "upstream", "downstream" or "both", not "${direction}".`,
      );
    }
    const maxDepth = options.maxDepth ?? 10;
    const database = this.context.database;
    const nodes = new Map<string, LineageNode>();
    const edges = new Map<string, LineageEdge>();
    const artifactIds = new Map<string, string>();
    const addEdge = (edge: LineageEdge): void => {
      edges.set(`${edge.from}|${edge.to}|${edge.relation}`, edge);
    };
    const addArtifact = async (artifactVersionId: string): Promise<string> => {
      const version = await this.artifacts.getById(database, artifactVersionId);
      nodes.set(version.ref, { kind: 'artifact', id: version.ref, ref: version.ref, type: version.type });
      artifactIds.set(version.ref, version.id);
      return version.ref;
    };
    const addRun = async (runId: string): Promise<string> => {
      const [run] = await database.query<{ job_type: string; state: string }>(
        'SELECT job_type, state FROM runs WHERE id = ?',
        [runId],
      );
      const id = `run:${runId}`;
      nodes.set(id, { kind: 'run', id, jobType: run?.job_type ?? 'unknown', state: run?.state ?? 'unknown' });
      return id;
    };

    const parsed = parseRefOfKind(ref, 'artifact', 'registry');
    let root: string;
    const frontier: { id: string; depth: number; going: 'upstream' | 'downstream' }[] = [];
    if (parsed.kind === 'registry') {
      const linked = await this.registry.resolve(ref);
      root = linked.ref;
      nodes.set(root, { kind: 'registry', id: root, ref: root, type: linked.artifact.type });
      const source = await addArtifact(linked.artifact.id);
      if (direction !== 'downstream') {
        addEdge({ from: source, to: root, relation: 'link' });
        frontier.push({ id: source, depth: 1, going: 'upstream' });
      }
      if (direction !== 'upstream') frontier.push({ id: root, depth: 0, going: 'downstream' });
    } else {
      const version = await this.artifacts.get(ref);
      root = await addArtifact(version.id);
      if (direction !== 'downstream') frontier.push({ id: root, depth: 0, going: 'upstream' });
      if (direction !== 'upstream') frontier.push({ id: root, depth: 0, going: 'downstream' });
    }
    const visited = new Set<string>();
    while (frontier.length > 0) {
      const { id, depth, going } = frontier.shift()!;
      const visitKey = `${going}|${id}`;
      if (visited.has(visitKey) || depth >= maxDepth) continue;
      visited.add(visitKey);
      if (id.startsWith('run:')) {
        const runId = id.slice(4);
        const relation = going === 'upstream' ? 'input' : 'output';
        const rows = await database.query<{ artifact_version_id: string }>(
          'SELECT artifact_version_id FROM run_artifacts WHERE run_id = ? AND direction = ? ORDER BY created_at',
          [runId, relation],
        );
        for (const row of rows) {
          const artifact = await addArtifact(row.artifact_version_id);
          addEdge(going === 'upstream' ? { from: artifact, to: id, relation } : { from: id, to: artifact, relation });
          frontier.push({ id: artifact, depth: depth + 1, going });
        }
        continue;
      }
      if (going === 'downstream') {
        // Objects that hold this exact ref in their value (a ChatModel holding a model version, a RagModel holding a ChatModel).
        const referencing = await database.query<{
          project: string;
          name: string;
          digest: string;
          type_name: string | null;
        }>(
          `SELECT project, name, digest, type_name FROM objects WHERE value_json LIKE ? ESCAPE '\\' ORDER BY created_at`,
          [`%${escapeLike(JSON.stringify(id))}%`],
        );
        for (const row of referencing) {
          const [entity, project] = row.project.split('/') as [string, string];
          const objectRef = formatRef({ kind: 'object', entity, project, name: row.name, digest: row.digest });
          nodes.set(objectRef, { kind: 'object', id: objectRef, ref: objectRef, typeName: row.type_name });
          addEdge({ from: id, to: objectRef, relation: 'reference' });
          frontier.push({ id: objectRef, depth: depth + 1, going });
        }
      }
      const artifactId = artifactIds.get(id);
      // Objects and registry versions lead on only through the objects that reference them.
      if (artifactId === undefined) continue;
      const relation = going === 'upstream' ? 'output' : 'input';
      const runs = await database.query<{ run_id: string }>(
        'SELECT run_id FROM run_artifacts WHERE artifact_version_id = ? AND direction = ? ORDER BY created_at',
        [artifactId, relation],
      );
      for (const row of runs) {
        const run = await addRun(row.run_id);
        addEdge(going === 'upstream' ? { from: run, to: id, relation } : { from: id, to: run, relation });
        frontier.push({ id: run, depth: depth + 1, going });
      }
      if (going === 'downstream') {
        const links = await database.query<{
          owner: string;
          project: string;
          name: string;
          version_index: number;
          artifact_type: string;
        }>(
          `SELECT c.owner, c.project, c.name, m.version_index, c.artifact_type FROM collection_members m
           JOIN collections c ON c.id = m.collection_id WHERE m.artifact_version_id = ? AND c.kind = 'portfolio'`,
          [artifactId],
        );
        for (const link of links) {
          const linkRef = formatRef({
            kind: 'registry',
            org: link.owner,
            registry: link.project.replace(/^wandb-registry-/, ''),
            collection: link.name,
            version: `v${link.version_index}`,
          });
          nodes.set(linkRef, { kind: 'registry', id: linkRef, ref: linkRef, type: link.artifact_type });
          addEdge({ from: id, to: linkRef, relation: 'link' });
          frontier.push({ id: linkRef, depth: depth + 1, going });
        }
      }
    }
    return { root, nodes: [...nodes.values()], edges: [...edges.values()] };
  }
}
