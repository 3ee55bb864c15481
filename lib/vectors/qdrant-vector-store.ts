import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  QdrantClient,
  QdrantClientResourceExhaustedError,
  QdrantClientTimeoutError,
  type Schemas,
} from '@qdrant/js-client-rest';
import { addToDigestSum, contentVersionOf, emptyDigestSum, pointContentHash } from './content-digest';
import {
  VectorAliasConflictError,
  CollectionConfigMismatchError,
  CollectionNotFoundError,
  VectorDimensionMismatchError,
  SnapshotError,
  VectorStoreError,
  VectorStoreUnavailableError,
} from './errors';
import { HybridRetriever } from './hybrid-retrieval';
import {
  normalizePointId,
  parseFilter,
  toStoredPoints,
  toStoredVector,
  validateCollectionName,
  validateLimit,
  validateQueryRequest,
  validateVectorParams,
} from './validation';
import type {
  AliasDescription,
  CollectionInfo,
  Distance,
  Filter,
  Payload,
  PointRecord,
  PointStruct,
  QueryRequest,
  ScoredPoint,
  ScrollPage,
  ScrollRequest,
  SnapshotDescription,
  UpsertOptions,
  VectorParams,
  VectorStore,
} from './vector-store';

const defaultBatchSize = 256;
const defaultScrollLimit = 256;
const contentScrollLimit = 1024;
const sqliteHeader = 'SQLite format 3\0';

export interface QdrantVectorStoreOptions {
  /** e.g. `http://localhost:6333`. */
  url: string;
  apiKey?: string;
}

/**
 * The Qdrant adapter: a thin mapping of the port onto Qdrant's REST API. Filters are validated against
 * the same subset as the embedded store and then sent as they are (they are Qdrant's filter JSON).
 */
export class QdrantVectorStore implements VectorStore {
  readonly kind = 'qdrant' as const;
  private readonly client: QdrantClient;
  private readonly baseUrl: string;
  private readonly hybrid = new HybridRetriever();

  constructor(private readonly options: QdrantVectorStoreOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    // Compatibility checks would cost a request at start-up and fail closed offline; errors surface per call.
    this.client = new QdrantClient({ url: this.baseUrl, apiKey: options.apiKey, checkCompatibility: false });
  }

  async createCollection(name: string, params: VectorParams): Promise<void> {
    validateCollectionName(name);
    const wanted = validateVectorParams(params);
    if (await this.collectionExists(name)) return this.checkSameParams(name, wanted);
    await this.refuseAliasName(name);
    try {
      await this.call(name, () =>
        this.client.createCollection(name, { vectors: { size: wanted.size, distance: wanted.distance } }),
      );
    } catch (error) {
      // Another worker created it between our check and our create: fine if the params agree.
      if (await this.collectionExists(name)) return this.checkSameParams(name, wanted);
      throw error;
    }
  }

  async recreateCollection(name: string, params: VectorParams): Promise<void> {
    validateCollectionName(name);
    const wanted = validateVectorParams(params);
    await this.deleteCollection(name);
    await this.refuseAliasName(name);
    await this.call(name, () =>
      this.client.createCollection(name, { vectors: { size: wanted.size, distance: wanted.distance } }),
    );
  }

  async collectionExists(name: string): Promise<boolean> {
    validateCollectionName(name);
    const existence = await this.call(name, () => this.client.collectionExists(name));
    if (!existence.exists) return false;
    // Qdrant answers true for an alias too; the port reserves "exists" for collections.
    return (await this.aliasTarget(name)) === undefined;
  }

  async getCollection(nameOrAlias: string): Promise<CollectionInfo> {
    const name = await this.resolveName(nameOrAlias);
    const info = await this.call(name, () => this.client.getCollection(name));
    return { name, ...vectorParamsOf(name, info), pointsCount: info.points_count ?? 0 };
  }

  async deleteCollection(name: string): Promise<boolean> {
    validateCollectionName(name);
    if (!(await this.collectionExists(name))) return false;
    await this.call(name, () => this.client.deleteCollection(name));
    return true;
  }

  async listCollections(): Promise<string[]> {
    const response = await this.call(undefined, () => this.client.getCollections());
    return response.collections.map((collection) => collection.name).sort();
  }

  async upsert(collection: string, points: readonly PointStruct[], options: UpsertOptions = {}): Promise<void> {
    const batchSize = validateLimit(options.batchSize ?? defaultBatchSize, 'batchSize');
    const info = await this.getCollection(collection);
    const stored = toStoredPoints(points, info, info.name).map((point) => ({
      id: point.id,
      vector: Array.from(point.vector),
      payload: point.payload,
    }));
    for (let start = 0; start < stored.length; start += batchSize) {
      const batch = stored.slice(start, start + batchSize);
      await this.call(collection, () => this.client.upsert(collection, { wait: true, points: batch }));
    }
  }

  async retrieve(
    collection: string,
    ids: readonly string[],
    options: { withPayload?: boolean; withVector?: boolean } = {},
  ): Promise<PointRecord[]> {
    const normalizedIds = ids.map((id) => normalizePointId(id));
    const withPayload = options.withPayload ?? true;
    const withVector = options.withVector ?? false;
    const records = await this.call(collection, () =>
      this.client.retrieve(collection, { ids: normalizedIds, with_payload: withPayload, with_vector: withVector }),
    );
    const byId = new Map(records.map((record) => [String(record.id), toRecord(record, withPayload, withVector)]));
    return normalizedIds.flatMap((id) => byId.get(id) ?? []);
  }

  async deletePoints(collection: string, ids: readonly string[]): Promise<void> {
    const normalizedIds = ids.map((id) => normalizePointId(id));
    await this.call(collection, () => this.client.delete(collection, { wait: true, points: normalizedIds }));
  }

  async count(collection: string, filter?: Filter): Promise<number> {
    const parsed = filter === undefined ? undefined : parseFilter(filter);
    const result = await this.call(collection, () =>
      this.client.count(collection, { filter: toQdrantFilter(parsed), exact: true }),
    );
    return result.count;
  }

  async scroll(collection: string, request: ScrollRequest = {}): Promise<ScrollPage> {
    const limit = validateLimit(request.limit ?? defaultScrollLimit);
    const filter = request.filter === undefined ? undefined : parseFilter(request.filter);
    const offset = request.offset === undefined ? undefined : normalizePointId(request.offset);
    const withPayload = request.withPayload ?? true;
    const withVector = request.withVector ?? false;
    const page = await this.call(collection, () =>
      this.client.scroll(collection, {
        filter: toQdrantFilter(filter),
        limit,
        offset,
        with_payload: withPayload,
        with_vector: withVector,
      }),
    );
    const next = page.next_page_offset;
    return {
      points: page.points.map((point) => toRecord(point, withPayload, withVector)),
      nextOffset: next === undefined || next === null ? undefined : String(next),
    };
  }

  async query(collection: string, request: QueryRequest): Promise<ScoredPoint[]> {
    const validated = validateQueryRequest(request);
    if (validated.hybrid !== undefined) return this.hybrid.query(this, collection, validated);
    const info = await this.getCollection(collection);
    const response = await this.call(collection, () => this.client.query(collection, toQdrantQuery(validated, info)));
    return response.points.map((point) => toScoredPoint(point, validated));
  }

  async queryBatch(collection: string, requests: readonly QueryRequest[]): Promise<ScoredPoint[][]> {
    const validated = requests.map((request) => validateQueryRequest(request));
    // Hybrid requests need the BM25 side too, so they run one by one; plain ones go in one round trip.
    if (validated.some((request) => request.hybrid !== undefined)) {
      const results: ScoredPoint[][] = [];
      for (const request of validated) results.push(await this.query(collection, request));
      return results;
    }
    const info = await this.getCollection(collection);
    const searches = validated.map((request) => toQdrantQuery(request, info));
    const responses = await this.call(collection, () => this.client.queryBatch(collection, { searches }));
    return responses.map((response, index) => response.points.map((point) => toScoredPoint(point, validated[index])));
  }

  async createAlias(alias: string, collection: string): Promise<void> {
    validateCollectionName(alias);
    await this.checkAliasTarget(alias, collection);
    const current = await this.aliasTarget(alias);
    if (current === collection) return;
    if (current !== undefined) {
      throw new VectorAliasConflictError(
        `Alias '${alias}' already points at collection '${current}', not '${collection}'; use switchAlias to move it.`,
      );
    }
    await this.call(undefined, () =>
      this.client.updateCollectionAliases({
        actions: [{ create_alias: { alias_name: alias, collection_name: collection } }],
      }),
    );
  }

  async switchAlias(alias: string, collection: string): Promise<void> {
    validateCollectionName(alias);
    await this.checkAliasTarget(alias, collection);
    const current = await this.aliasTarget(alias);
    if (current === collection) return;
    // Qdrant applies the actions of one request atomically: readers never see the alias missing.
    const actions: Schemas['AliasOperations'][] = [];
    if (current !== undefined) actions.push({ delete_alias: { alias_name: alias } });
    actions.push({ create_alias: { alias_name: alias, collection_name: collection } });
    await this.call(undefined, () => this.client.updateCollectionAliases({ actions }));
  }

  async deleteAlias(alias: string): Promise<boolean> {
    validateCollectionName(alias);
    if ((await this.aliasTarget(alias)) === undefined) return false;
    await this.call(undefined, () =>
      this.client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: alias } }] }),
    );
    return true;
  }

  async listAliases(): Promise<AliasDescription[]> {
    const response = await this.call(undefined, () => this.client.getAliases());
    return response.aliases
      .map((entry) => ({ alias: entry.alias_name, collection: entry.collection_name }))
      .sort((left, right) => (left.alias < right.alias ? -1 : left.alias > right.alias ? 1 : 0));
  }

  async createSnapshot(collection: string, filePath: string): Promise<SnapshotDescription> {
    const name = await this.resolveName(collection);
    const target = path.resolve(filePath);
    // Measured before the snapshot: writers running during it may make the recorded version stale.
    const contentVersion = await this.contentVersion(name);
    const pointsCount = await this.count(name);
    const snapshot = await this.call(name, () => this.client.createSnapshot(name, { wait: true }));
    if (snapshot === null || snapshot === undefined) {
      throw new SnapshotError(target, `Qdrant did not return a snapshot of collection '${name}'`);
    }
    const partial = `${target}.partial-${process.pid}`;
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const response = await this.fetch(
        `/collections/${encodeURIComponent(name)}/snapshots/${encodeURIComponent(snapshot.name)}`,
        { method: 'GET' },
      );
      if (!response.ok || response.body === null) {
        throw new SnapshotError(target, `downloading it from Qdrant failed with HTTP ${response.status}`);
      }
      await pipeline(
        Readable.fromWeb(response.body as Parameters<typeof Readable.fromWeb>[0]),
        fs.createWriteStream(partial),
      );
      fs.renameSync(partial, target);
    } catch (error) {
      fs.rmSync(partial, { force: true });
      throw error;
    } finally {
      // The server copy is only a staging file; keeping it would fill Qdrant's disk.
      await this.client.deleteSnapshot(name, snapshot.name).catch(() => undefined);
    }
    return { path: target, collection: name, pointsCount, contentVersion };
  }

  async restoreSnapshot(filePath: string, collection: string): Promise<void> {
    validateCollectionName(collection);
    const source = path.resolve(filePath);
    let file: Blob;
    try {
      const header = Buffer.alloc(16);
      const descriptor = fs.openSync(source, 'r');
      try {
        fs.readSync(descriptor, header, 0, 16, 0);
      } finally {
        fs.closeSync(descriptor);
      }
      if (header.toString('latin1') === sqliteHeader) {
        throw new SnapshotError(source, 'it is a sqlite-vec snapshot; restore it with the embedded store');
      }
      file = await fs.openAsBlob(source);
    } catch (error) {
      if (error instanceof VectorStoreError) throw error;
      throw new SnapshotError(source, 'the file cannot be read', { cause: error });
    }
    const form = new FormData();
    form.append('snapshot', file, path.basename(source));
    // priority=snapshot: the file is the source of truth, replacing whatever the collection held.
    const response = await this.fetch(
      `/collections/${encodeURIComponent(collection)}/snapshots/upload?priority=snapshot&wait=true`,
      { method: 'POST', body: form },
    );
    if (!response.ok) {
      const detail = await response.text().catch(() => '');
      const error = new SnapshotError(
        source,
        `Qdrant refused it with HTTP ${response.status}: ${detail.slice(0, 300)}`,
      );
      throw response.status >= 500 ? new VectorStoreUnavailableError(error.message) : error;
    }
  }

  /** Exact but O(points): scrolls every id, payload and vector (see content-digest.ts). */
  async contentVersion(collection: string): Promise<string> {
    const info = await this.getCollection(collection);
    let digestSum = emptyDigestSum;
    let pointsCount = 0;
    let offset: string | undefined;
    do {
      const page = await this.scroll(info.name, {
        limit: contentScrollLimit,
        offset,
        withPayload: true,
        withVector: true,
      });
      for (const point of page.points) {
        digestSum = addToDigestSum(
          digestSum,
          pointContentHash(point.id, Float32Array.from(point.vector ?? []), point.payload),
        );
        pointsCount++;
      }
      offset = page.nextOffset;
    } while (offset !== undefined);
    return contentVersionOf(info, pointsCount, digestSum);
  }

  async close(): Promise<void> {
    // The REST client holds no connection that needs closing.
  }

  private async fetch(pathAndQuery: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.options.apiKey !== undefined) headers.set('api-key', this.options.apiKey);
    try {
      return await fetch(`${this.baseUrl}${pathAndQuery}`, { ...init, headers });
    } catch (error) {
      throw new VectorStoreUnavailableError(`Qdrant at ${this.baseUrl} could not be reached: ${String(error)}`, {
        cause: error,
      });
    }
  }

  private async checkSameParams(name: string, wanted: VectorParams): Promise<void> {
    const existing = await this.getCollection(name);
    if (existing.size !== wanted.size || existing.distance !== wanted.distance) {
      throw new CollectionConfigMismatchError(
        name,
        `size ${existing.size} and distance ${existing.distance}`,
        `size ${wanted.size} and distance ${wanted.distance}`,
      );
    }
  }

  private async refuseAliasName(name: string): Promise<void> {
    if ((await this.aliasTarget(name)) !== undefined) {
      throw new VectorAliasConflictError(
        `Cannot create collection '${name}': an alias has that name; delete the alias first.`,
      );
    }
  }

  private async checkAliasTarget(alias: string, collection: string): Promise<void> {
    validateCollectionName(collection);
    const aliasIsCollection = (await this.call(alias, () => this.client.collectionExists(alias))).exists;
    if (aliasIsCollection && (await this.aliasTarget(alias)) === undefined) {
      throw new VectorAliasConflictError(`Cannot create alias '${alias}': a collection has that name.`);
    }
    if (!(await this.collectionExists(collection))) throw new CollectionNotFoundError(collection);
  }

  private async aliasTarget(alias: string): Promise<string | undefined> {
    const response = await this.call(undefined, () => this.client.getAliases());
    return response.aliases.find((entry) => entry.alias_name === alias)?.collection_name;
  }

  private async resolveName(nameOrAlias: string): Promise<string> {
    validateCollectionName(nameOrAlias);
    const target = await this.aliasTarget(nameOrAlias);
    if (target !== undefined) return target;
    const existence = await this.call(nameOrAlias, () => this.client.collectionExists(nameOrAlias));
    if (!existence.exists) throw new CollectionNotFoundError(nameOrAlias);
    return nameOrAlias;
  }

  /** Runs one client call and turns Qdrant's failures into the port's typed errors. */
  private async call<T>(collection: string | undefined, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw classifyQdrantError(error, collection, this.baseUrl);
    }
  }
}

function vectorParamsOf(name: string, info: Schemas['CollectionInfo']): VectorParams {
  const vectors = info.config.params.vectors as Partial<Schemas['VectorParams']> | undefined;
  if (vectors === undefined || typeof vectors.size !== 'number' || typeof vectors.distance !== 'string') {
    throw new CollectionConfigMismatchError(name, 'named or no vectors', 'a single unnamed vector');
  }
  if (vectors.distance !== 'Cosine' && vectors.distance !== 'Dot' && vectors.distance !== 'Euclid') {
    throw new CollectionConfigMismatchError(name, `distance ${vectors.distance}`, 'Cosine, Dot or Euclid');
  }
  return { size: vectors.size, distance: vectors.distance as Distance };
}

function toQdrantFilter(filter: Filter | undefined): Schemas['Filter'] | undefined {
  // The port's Filter is a subset of Qdrant's filter JSON, already validated by parseFilter.
  return filter as Schemas['Filter'] | undefined;
}

function toQdrantQuery(request: QueryRequest, info: CollectionInfo): Schemas['QueryRequest'] {
  return {
    query: Array.from(toStoredVector(request.vector, info, info.name, 'The query vector')),
    filter: toQdrantFilter(request.filter),
    limit: request.limit,
    with_payload: request.withPayload ?? true,
    with_vector: request.withVector ?? false,
    params: request.exact === true ? { exact: true } : undefined,
  };
}

type QdrantRecord = Schemas['Record'] | Schemas['ScoredPoint'];

function toRecord(point: QdrantRecord, withPayload: boolean, withVector: boolean): PointRecord {
  const record: PointRecord = { id: String(point.id), payload: withPayload ? ((point.payload ?? {}) as Payload) : {} };
  if (withVector && Array.isArray(point.vector)) record.vector = point.vector as number[];
  return record;
}

function toScoredPoint(point: Schemas['ScoredPoint'], request: QueryRequest): ScoredPoint {
  return { ...toRecord(point, request.withPayload ?? true, request.withVector ?? false), score: point.score };
}

function classifyQdrantError(error: unknown, collection: string | undefined, baseUrl: string): unknown {
  if (error instanceof VectorStoreError) return error;
  if (error instanceof QdrantClientTimeoutError || error instanceof QdrantClientResourceExhaustedError) {
    return new VectorStoreUnavailableError(`Qdrant at ${baseUrl} is overloaded or slow: ${error.message}`, {
      cause: error,
    });
  }
  const status = (error as { status?: unknown }).status;
  const detail = qdrantErrorText(error);
  if (typeof status === 'number') {
    if (status === 404 && collection !== undefined) return new CollectionNotFoundError(collection);
    const dimensions = /expected dim: (\d+), got (\d+)/.exec(detail);
    if (status === 400 && dimensions !== null) {
      return new VectorDimensionMismatchError(
        collection ?? '?',
        Number(dimensions[1]),
        Number(dimensions[2]),
        'A vector',
      );
    }
    if (status >= 500 || status === 429) {
      return new VectorStoreUnavailableError(`Qdrant at ${baseUrl} failed with HTTP ${status}: ${detail}`, {
        cause: error,
      });
    }
    return error;
  }
  if ((error as Error | undefined)?.name === 'TypeError') {
    // fetch() throws TypeError('fetch failed') for refused connections and DNS failures; matched by name
    // because undici's TypeError may come from another realm (e.g. under jest).
    return new VectorStoreUnavailableError(`Qdrant at ${baseUrl} could not be reached: ${detail}`, { cause: error });
  }
  return error;
}

function qdrantErrorText(error: unknown): string {
  const data = (error as { data?: { status?: { error?: unknown } } }).data;
  if (typeof data?.status?.error === 'string') return data.status.error;
  const cause = (error as { cause?: unknown }).cause;
  return `${String((error as Error).message)}${cause === undefined ? '' : ` (${String(cause)})`}`;
}
