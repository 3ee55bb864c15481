import type { ArtifactStore } from './artifacts';
import { InvalidValueError, NotFoundError } from './errors';
import type { ObjectStore } from './objects';
import { formatRef, parseRef, parseRefOfKind } from './refs';
import type { RegistryStore } from './registry';
import type { StoreContext } from './store-context';

export type LineageNode =
  | { kind: 'artifact'; id: string; ref: string; type: string }
  | { kind: 'object'; id: string; ref: string; typeName: string | null }
  | { kind: 'registry'; id: string; ref: string; type: string }
  | { kind: 'run'; id: string; jobType: string; state: string };

/**
 * `from` → `to`: an artifact used by a run ('input'), a run that logged an artifact ('output'), an artifact
 * linked into a registry ('link'), a version or object whose exact ref a Weave object's value or a reference
 * artifact's manifest holds ('reference').
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

/** Artifact, registry and object refs found in a value (an object's fields, at any depth). */
function refsInValue(value: unknown, found = new Set<string>(), depth = 0): Set<string> {
  if (typeof value === 'string') {
    if (value.startsWith('wandb-artifact:///') || value.startsWith('weave:///')) found.add(value);
  } else if (value !== null && typeof value === 'object' && depth < 32) {
    for (const item of Object.values(value)) refsInValue(item, found, depth + 1);
  }
  return found;
}

/** Walks the artifact ↔ run ↔ registry ↔ object graph from a ref in either direction. */
export class LineageWalker {
  constructor(
    private readonly context: StoreContext,
    private readonly artifacts: ArtifactStore,
    private readonly registry: RegistryStore,
    private readonly objects: ObjectStore,
  ) {}

  /** Node ids are artifact refs (`…:vN`), registry refs (`…:vN`), object refs (`…:<digest>`) and `run:<id>`. */
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
    const addArtifact = async (artifactVersionId: string): Promise<string> =>
      addArtifactVersion(await this.artifacts.getById(database, artifactVersionId));
    const manifests = new Map<string, { ref?: string }[]>();
    const addArtifactVersion = (version: {
      ref: string;
      id: string;
      type: string;
      manifest: { ref?: string }[];
    }): string => {
      nodes.set(version.ref, { kind: 'artifact', id: version.ref, ref: version.ref, type: version.type });
      artifactIds.set(version.ref, version.id);
      manifests.set(version.ref, version.manifest);
      return version.ref;
    };
    const addObject = async (objectRef: string): Promise<string | undefined> => {
      const existing = nodes.get(objectRef);
      if (existing) return existing.id;
      try {
        const object = await this.objects.get(objectRef);
        const id = formatRef({
          kind: 'object',
          entity: object.entity,
          project: object.project,
          name: object.name,
          digest: object.digest,
        });
        const value = object.value as { _type?: unknown } | null;
        const typeName = value && typeof value._type === 'string' ? value._type : null;
        if (!nodes.has(id)) nodes.set(id, { kind: 'object', id, ref: id, typeName });
        objectValues.set(id, object.value);
        return id;
      } catch (error) {
        // A value may name an object that was never stored here (written by another project): not part of the graph.
        if (error instanceof NotFoundError) return undefined;
        throw error;
      }
    };
    const objectValues = new Map<string, unknown>();
    /** The node a ref found in an object's value or a manifest stands for, or undefined when it is not in the store. */
    const nodeOfRef = async (text: string): Promise<string | undefined> => {
      let parsed;
      try {
        parsed = parseRef(text);
      } catch {
        return undefined; // e.g. a dataset row ref (`…/attr/rows/id/…`): not a node of the graph
      }
      try {
        if (parsed.kind === 'object') return await addObject(text);
        if (parsed.kind === 'artifact') return addArtifactVersion(await this.artifacts.get(text));
        if (parsed.kind === 'registry') {
          const linked = await this.registry.resolve(text);
          nodes.set(linked.ref, { kind: 'registry', id: linked.ref, ref: linked.ref, type: linked.artifact.type });
          addEdge({ from: addArtifactVersion(linked.artifact), to: linked.ref, relation: 'link' });
          return linked.ref;
        }
      } catch (error) {
        if (error instanceof NotFoundError) return undefined;
        throw error;
      }
      return undefined;
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

    const parsed = parseRefOfKind(ref, 'artifact', 'registry', 'object');
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
    } else if (parsed.kind === 'object') {
      const object = await this.objects.get(ref);
      root = (await addObject(object.ref))!;
      if (direction !== 'downstream') frontier.push({ id: root, depth: 0, going: 'upstream' });
      if (direction !== 'upstream') frontier.push({ id: root, depth: 0, going: 'downstream' });
    } else {
      const version = await this.artifacts.get(ref);
      root = addArtifactVersion(version);
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
      if (going === 'upstream' && objectValues.has(id)) {
        // What an object's value names: the model artifact of a ChatModel, the ChatModel of a RagModel, a Dataset.
        for (const found of refsInValue(objectValues.get(id))) {
          const source = await nodeOfRef(found);
          if (source === undefined || source === id) continue;
          addEdge({ from: source, to: id, relation: 'reference' });
          frontier.push({ id: source, depth: depth + 1, going });
        }
        continue;
      }
      if (going === 'upstream' && artifactIds.has(id)) {
        // A reference artifact points at what it publishes (the RagModel of a `RAG Models` version).
        for (const entry of manifests.get(id) ?? []) {
          if (!entry.ref?.startsWith('weave:///')) continue;
          const source = await nodeOfRef(entry.ref);
          if (source === undefined) continue;
          addEdge({ from: source, to: id, relation: 'reference' });
          frontier.push({ id: source, depth: depth + 1, going });
        }
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
        if (objectValues.has(id) || id.startsWith('weave:///')) {
          // Reference artifacts whose manifest points at this object (a RagModel published to a registry).
          const publishing = await database.query<{ id: string }>(
            `SELECT id FROM artifact_versions WHERE manifest_json LIKE ? ESCAPE '\\' ORDER BY created_at`,
            [`%${escapeLike(JSON.stringify(id))}%`],
          );
          for (const row of publishing) {
            const artifact = await addArtifact(row.id);
            addEdge({ from: id, to: artifact, relation: 'reference' });
            frontier.push({ id: artifact, depth: depth + 1, going });
          }
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
