/**
 * The vector store port, in Qdrant's terms so that a reader who knows Qdrant recognises every noun:
 * collections with vector params (size, distance), points with UUID ids and JSON payloads, filters
 * with must/should/must_not, aliases, snapshots. Adapters: sqlite-vec (embedded default) and Qdrant.
 */

/** How similarity is measured. Scores follow Qdrant: Cosine and Dot are higher-is-closer, Euclid is a distance. */
export type Distance = 'Cosine' | 'Dot' | 'Euclid';

/** Qdrant's `vectors` parameters of a collection. */
export interface VectorParams {
  /** Number of dimensions every vector in the collection has. */
  size: number;
  distance: Distance;
}

export interface CollectionInfo extends VectorParams {
  /** The collection's own name, also when it was looked up through an alias. */
  name: string;
  pointsCount: number;
}

export type PayloadValue = string | number | boolean | null | PayloadValue[] | { [key: string]: PayloadValue };
export type Payload = Record<string, PayloadValue>;

/** A vector as the caller has it; stored as float32. */
export type Vector = readonly number[] | Float32Array;

export interface PointStruct {
  /** A UUID; stored in lowercase hyphenated form, as Qdrant does. */
  id: string;
  vector: Vector;
  payload?: Payload;
}

/** A stored point as read back. For Cosine collections the vector is the normalised one, as in Qdrant. */
export interface PointRecord {
  id: string;
  payload: Payload;
  vector?: number[];
}

export interface ScoredPoint extends PointRecord {
  /** Cosine similarity, dot product or Euclidean distance (see {@link Distance}); for hybrid queries the fused RRF score. */
  score: number;
}

/**
 * The Qdrant filter subset weft supports; the same JSON Qdrant takes, so `must_not` keeps Qdrant's spelling.
 * Anything outside the subset (geo, text match, is_empty, nested, min_should, …) is rejected with
 * UnsupportedFilterError, never ignored.
 */
export interface Filter {
  must?: Condition[];
  should?: Condition[];
  must_not?: Condition[];
}

export type MatchValue = string | number | boolean;

/** Matches when the payload value at `key` (or any element of it, when it is an array) equals `value`. */
export interface MatchValueCondition {
  key: string;
  match: { value: MatchValue };
}

/** Matches when the payload value at `key` (or any element) equals one of `any` (strings or integers). */
export interface MatchAnyCondition {
  key: string;
  match: { any: string[] | number[] };
}

/** Matches when the numeric payload value at `key` (or any element) lies within every bound given. */
export interface RangeCondition {
  key: string;
  range: { gt?: number; gte?: number; lt?: number; lte?: number };
}

/** Matches points whose id is one of `has_id`. */
export interface HasIdCondition {
  has_id: string[];
}

/** A condition is a field condition, an id condition or a nested filter, as in Qdrant. */
export type Condition = MatchValueCondition | MatchAnyCondition | RangeCondition | HasIdCondition | Filter;

/** Hybrid retrieval: BM25 over one payload text field, fused with the vector ranking by reciprocal rank fusion. */
export interface HybridText {
  /** Payload key whose string value is indexed (e.g. `text`). */
  field: string;
  /** The query text, tokenised like the documents. */
  text: string;
}

export interface QueryRequest {
  vector: Vector;
  /** Number of hits to return; a filtered query still returns `limit` hits when that many points match. */
  limit: number;
  filter?: Filter;
  /** Default true. */
  withPayload?: boolean;
  /** Default false. */
  withVector?: boolean;
  /** When set, the result is the RRF fusion (k = 60) of the vector ranking and the BM25 ranking. */
  hybrid?: HybridText;
  /** Qdrant: search without the HNSW index (exact, slower). sqlite-vec is always exact. Default false. */
  exact?: boolean;
}

export interface ScrollRequest {
  filter?: Filter;
  /** Page size; default 256. */
  limit?: number;
  /** The `nextOffset` of the previous page; ids are returned in ascending order. */
  offset?: string;
  /** Default true. */
  withPayload?: boolean;
  /** Default false. */
  withVector?: boolean;
}

export interface ScrollPage {
  points: PointRecord[];
  /** Pass as `offset` to read the next page; undefined on the last page. */
  nextOffset: string | undefined;
}

export interface UpsertOptions {
  /** Points written per transaction (sqlite) or request (Qdrant); default 256. */
  batchSize?: number;
}

export interface AliasDescription {
  alias: string;
  collection: string;
}

export interface SnapshotDescription {
  /** The file the snapshot was written to. */
  path: string;
  collection: string;
  pointsCount: number;
  /** The collection's content version when the snapshot was taken; a restore reproduces it. */
  contentVersion: string;
}

export interface VectorStore {
  /** Which adapter this is, for logs and error messages. */
  readonly kind: 'sqlite-vec' | 'qdrant';

  /**
   * Creates the collection; a no-op when it already exists with the same params, so a retried activity
   * succeeds. Fails with CollectionConfigMismatchError when it exists with other params.
   */
  createCollection(name: string, params: VectorParams): Promise<void>;
  /** Deletes the collection (if any) and creates it empty. */
  recreateCollection(name: string, params: VectorParams): Promise<void>;
  /** True for a collection name; false for an alias or an unknown name. */
  collectionExists(name: string): Promise<boolean>;
  /** Accepts a collection or an alias name. */
  getCollection(nameOrAlias: string): Promise<CollectionInfo>;
  /** Deletes the collection and the aliases pointing at it; false when there was none. */
  deleteCollection(name: string): Promise<boolean>;
  listCollections(): Promise<string[]>;

  /** Inserts or replaces points by id, in batches; upserting the same points twice changes nothing. */
  upsert(collection: string, points: readonly PointStruct[], options?: UpsertOptions): Promise<void>;
  /** The points with these ids, in the order asked; unknown ids are left out. */
  retrieve(
    collection: string,
    ids: readonly string[],
    options?: { withPayload?: boolean; withVector?: boolean },
  ): Promise<PointRecord[]>;
  /** Deletes points by id; unknown ids are ignored. */
  deletePoints(collection: string, ids: readonly string[]): Promise<void>;
  /** Exact number of points, of those matching `filter` when given. */
  count(collection: string, filter?: Filter): Promise<number>;
  /** Pages through points in id order. */
  scroll(collection: string, request?: ScrollRequest): Promise<ScrollPage>;

  /** Exact nearest neighbours, filtered before the top `limit` is taken. `collection` may be an alias. */
  query(collection: string, request: QueryRequest): Promise<ScoredPoint[]>;
  /** Several queries against one collection; results in the order of the requests. */
  queryBatch(collection: string, requests: readonly QueryRequest[]): Promise<ScoredPoint[][]>;

  /** Points `alias` at `collection`; a no-op when it already does. Fails when it points elsewhere. */
  createAlias(alias: string, collection: string): Promise<void>;
  /** Atomically points `alias` at `collection` (creating it if needed): readers see the old or the new one. */
  switchAlias(alias: string, collection: string): Promise<void>;
  /** False when there was no such alias. */
  deleteAlias(alias: string): Promise<boolean>;
  listAliases(): Promise<AliasDescription[]>;

  /** Writes a snapshot of the collection to `filePath` (a file format of this adapter). */
  createSnapshot(collection: string, filePath: string): Promise<SnapshotDescription>;
  /** Replaces (or creates) `collection` with the snapshot's points and params. */
  restoreSnapshot(filePath: string, collection: string): Promise<void>;

  /**
   * A digest of the collection's params and points (ids, vectors, payloads): it changes whenever a point
   * changes and only then, so caches may key on it. Re-upserting identical points leaves it unchanged.
   */
  contentVersion(collection: string): Promise<string>;

  close(): Promise<void>;
}
