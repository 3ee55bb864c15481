import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import * as sqliteVec from 'sqlite-vec';
import {
  addToDigestSum,
  contentVersionOf,
  emptyDigestSum,
  pointContentHash,
  subtractFromDigestSum,
} from './content-digest';
import {
  VectorAliasConflictError,
  CollectionConfigMismatchError,
  CollectionNotFoundError,
  IncompatibleVectorStoreError,
  SnapshotError,
  VectorStoreUnavailableError,
} from './errors';
import { HybridRetriever } from './hybrid-retrieval';
import { payloadLeaves } from './payload-index';
import { compileFilter } from './sqlite-filter';
import {
  normalizePointId,
  parseFilter,
  type StoredPoint,
  toStoredPoints,
  toStoredVector,
  validateCollectionName,
  validateLimit,
  validateQueryRequest,
  validateVectorParams,
  vectorNorm,
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

interface CollectionRow {
  name: string;
  table_key: number;
  size: number;
  distance: Distance;
  points_count: number;
  digest_sum: string;
}

export interface SqliteVectorStoreOptions {
  /** How long a write waits for another process's write lock before failing retryably; default 5000 ms. */
  busyTimeoutMilliseconds?: number;
}

/** Stored in the file's user_version; bump it (with a migration) whenever the tables change. */
const storeLayoutVersion = 1;
const defaultBatchSize = 256;
const defaultScrollLimit = 256;
const snapshotFormat = 'weft-sqlite-vec-snapshot-v1';
const sqliteHeader = 'SQLite format 3\0';

/**
 * The embedded vector store: one SQLite file, points of each collection in their own table.
 *
 * Search is an exact scan with sqlite-vec's distance functions under a SQL WHERE compiled from the filter,
 * rather than a vec0 KNN index: vec0 filters only on declared metadata columns, while payloads here are
 * arbitrary JSON, and filtering after a KNN would return fewer than k hits. The filter reads a payload
 * index (payload-index.ts), so only matching points are scored, and only the top k payloads are read.
 */
export class SqliteVectorStore implements VectorStore {
  readonly kind = 'sqlite-vec' as const;
  private readonly database: Database.Database;
  private readonly hybrid = new HybridRetriever();

  private constructor(
    readonly filePath: string,
    options: SqliteVectorStoreOptions,
  ) {
    fs.mkdirSync(path.dirname(filePath), { recursive: true });
    this.database = new Database(filePath);
    sqliteVec.load(this.database);
    // WAL lets workers read while one writes; the busy timeout waits out a writer in another process.
    this.database.pragma('journal_mode = WAL');
    this.database.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMilliseconds ?? 5000))}`);
    this.database.pragma('synchronous = NORMAL');
    this.database.pragma('foreign_keys = ON');
    // Queries scan every vector; memory-mapped reads avoid copying pages through SQLite's small cache.
    this.database.pragma('mmap_size = 1073741824');
    const layoutVersion = this.database.pragma('user_version', { simple: true }) as number;
    if (layoutVersion !== 0 && layoutVersion !== storeLayoutVersion) {
      this.database.close();
      throw new IncompatibleVectorStoreError(filePath, layoutVersion, storeLayoutVersion);
    }
    this.database.pragma(`user_version = ${storeLayoutVersion}`);
    this.database.exec(`
      CREATE TABLE IF NOT EXISTS vector_collections (
        name TEXT PRIMARY KEY,
        table_key INTEGER NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        distance TEXT NOT NULL,
        points_count INTEGER NOT NULL,
        digest_sum TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS vector_aliases (
        alias TEXT PRIMARY KEY,
        collection TEXT NOT NULL REFERENCES vector_collections(name) ON DELETE CASCADE
      );
    `);
  }

  /** Opens (creating if needed) the store in `filePath`, e.g. `$WEFT_HOME/vectors.db`. */
  static open(filePath: string, options: SqliteVectorStoreOptions = {}): SqliteVectorStore {
    try {
      return new SqliteVectorStore(path.resolve(filePath), options);
    } catch (error) {
      throw classifySqliteError(error, `open the vector store ${filePath}`);
    }
  }

  async createCollection(name: string, params: VectorParams): Promise<void> {
    validateCollectionName(name);
    const wanted = validateVectorParams(params);
    this.write(`create collection '${name}'`, () => {
      const existing = this.findCollection(name);
      if (existing !== undefined) {
        if (existing.size !== wanted.size || existing.distance !== wanted.distance) {
          throw new CollectionConfigMismatchError(name, describeParams(existing), describeParams(wanted));
        }
        return;
      }
      this.insertCollection(name, wanted);
    });
  }

  async recreateCollection(name: string, params: VectorParams): Promise<void> {
    validateCollectionName(name);
    const wanted = validateVectorParams(params);
    this.write(`recreate collection '${name}'`, () => {
      const existing = this.findCollection(name);
      if (existing !== undefined) this.dropCollection(existing);
      this.insertCollection(name, wanted);
    });
  }

  async collectionExists(name: string): Promise<boolean> {
    validateCollectionName(name);
    return this.read(() => this.findCollection(name) !== undefined);
  }

  async getCollection(nameOrAlias: string): Promise<CollectionInfo> {
    const row = this.read(() => this.resolve(nameOrAlias));
    return { name: row.name, size: row.size, distance: row.distance, pointsCount: row.points_count };
  }

  async deleteCollection(name: string): Promise<boolean> {
    validateCollectionName(name);
    return this.write(`delete collection '${name}'`, () => {
      const existing = this.findCollection(name);
      if (existing === undefined) return false;
      this.dropCollection(existing);
      return true;
    });
  }

  async listCollections(): Promise<string[]> {
    return this.read(() =>
      this.database
        .prepare<[], { name: string }>('SELECT name FROM vector_collections ORDER BY name')
        .all()
        .map((row) => row.name),
    );
  }

  async upsert(collection: string, points: readonly PointStruct[], options: UpsertOptions = {}): Promise<void> {
    const batchSize = validateLimit(options.batchSize ?? defaultBatchSize, 'batchSize');
    const params = this.read(() => this.resolve(collection));
    const stored = toStoredPoints(points, params, params.name);
    for (let start = 0; start < stored.length; start += batchSize) {
      const batch = stored.slice(start, start + batchSize);
      this.write(`upsert into '${collection}'`, () => this.upsertBatch(collection, params, batch));
      // Yield between batches so a long upsert does not starve heartbeats and timers.
      if (start + batchSize < stored.length) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async retrieve(
    collection: string,
    ids: readonly string[],
    options: { withPayload?: boolean; withVector?: boolean } = {},
  ): Promise<PointRecord[]> {
    const normalizedIds = ids.map((id) => normalizePointId(id));
    return this.read(() => {
      const row = this.resolve(collection);
      const select = this.database.prepare<[string], StoredPointRow>(
        `SELECT id, vector, json(payload) AS payload FROM ${pointsTable(row)} WHERE id = ?`,
      );
      const records: PointRecord[] = [];
      for (const id of normalizedIds) {
        const stored = select.get(id);
        if (stored !== undefined)
          records.push(toRecord(stored, options.withPayload ?? true, options.withVector ?? false));
      }
      return records;
    });
  }

  async deletePoints(collection: string, ids: readonly string[]): Promise<void> {
    const normalizedIds = ids.map((id) => normalizePointId(id));
    this.write(`delete points from '${collection}'`, () => {
      const row = this.resolve(collection);
      const table = pointsTable(row);
      const selectPoint = this.database.prepare<[string], { point_key: number; content_hash: string }>(
        `SELECT point_key, content_hash FROM ${table} WHERE id = ?`,
      );
      const removePoint = this.database.prepare<[number]>(`DELETE FROM ${table} WHERE point_key = ?`);
      const removeValues = this.database.prepare<[number]>(`DELETE FROM ${valuesTable(row)} WHERE point_key = ?`);
      let digestSum = row.digest_sum;
      let pointsCount = row.points_count;
      for (const id of normalizedIds) {
        const existing = selectPoint.get(id);
        if (existing === undefined) continue;
        removePoint.run(existing.point_key);
        removeValues.run(existing.point_key);
        digestSum = subtractFromDigestSum(digestSum, existing.content_hash);
        pointsCount--;
      }
      this.saveDigest(row.name, pointsCount, digestSum);
    });
  }

  async count(collection: string, filter?: Filter): Promise<number> {
    const parsed = filter === undefined ? undefined : parseFilter(filter);
    return this.read(() => {
      const row = this.resolve(collection);
      if (parsed === undefined) return row.points_count;
      const parameters: unknown[] = [];
      const where = compileFilter(parsed, valuesTable(row), parameters);
      return this.database
        .prepare<unknown[], { total: number }>(
          `SELECT count(*) AS total FROM ${pointsTable(row)} AS point WHERE ${where}`,
        )
        .get(...parameters)!.total;
    });
  }

  async scroll(collection: string, request: ScrollRequest = {}): Promise<ScrollPage> {
    const limit = validateLimit(request.limit ?? defaultScrollLimit);
    const filter = request.filter === undefined ? undefined : parseFilter(request.filter);
    const offset = request.offset === undefined ? undefined : normalizePointId(request.offset);
    return this.read(() => {
      const row = this.resolve(collection);
      const parameters: unknown[] = [];
      const where = compileFilter(filter, valuesTable(row), parameters);
      const after = offset === undefined ? '' : 'AND point.id >= ?';
      if (offset !== undefined) parameters.push(offset);
      parameters.push(limit + 1);
      const rows = this.database
        .prepare<unknown[], StoredPointRow>(
          `SELECT id, vector, json(payload) AS payload FROM ${pointsTable(row)} AS point ` +
            `WHERE ${where} ${after} ORDER BY id LIMIT ?`,
        )
        .all(...parameters);
      const nextOffset = rows.length > limit ? rows[limit].id : undefined;
      return {
        points: rows
          .slice(0, limit)
          .map((stored) => toRecord(stored, request.withPayload ?? true, request.withVector ?? false)),
        nextOffset,
      };
    });
  }

  async query(collection: string, request: QueryRequest): Promise<ScoredPoint[]> {
    const validated = validateQueryRequest(request);
    if (validated.hybrid !== undefined) return this.hybrid.query(this, collection, validated);
    return this.read(() => this.exactQuery(collection, validated));
  }

  async queryBatch(collection: string, requests: readonly QueryRequest[]): Promise<ScoredPoint[][]> {
    const results: ScoredPoint[][] = [];
    for (const request of requests) results.push(await this.query(collection, request));
    return results;
  }

  async createAlias(alias: string, collection: string): Promise<void> {
    validateCollectionName(alias);
    validateCollectionName(collection);
    this.write(`create alias '${alias}'`, () => {
      this.checkAliasTarget(alias, collection);
      const current = this.findAlias(alias);
      if (current === collection) return;
      if (current !== undefined) {
        throw new VectorAliasConflictError(
          `Alias '${alias}' already points at collection '${current}', not '${collection}'; use switchAlias to move it.`,
        );
      }
      this.database.prepare('INSERT INTO vector_aliases (alias, collection) VALUES (?, ?)').run(alias, collection);
    });
  }

  async switchAlias(alias: string, collection: string): Promise<void> {
    validateCollectionName(alias);
    validateCollectionName(collection);
    // One statement in one transaction: a reader resolves the alias to the old or the new collection.
    this.write(`switch alias '${alias}'`, () => {
      this.checkAliasTarget(alias, collection);
      this.database
        .prepare(
          'INSERT INTO vector_aliases (alias, collection) VALUES (?, ?) ' +
            'ON CONFLICT (alias) DO UPDATE SET collection = excluded.collection',
        )
        .run(alias, collection);
    });
  }

  async deleteAlias(alias: string): Promise<boolean> {
    validateCollectionName(alias);
    return this.write(`delete alias '${alias}'`, () => {
      return this.database.prepare('DELETE FROM vector_aliases WHERE alias = ?').run(alias).changes > 0;
    });
  }

  async listAliases(): Promise<AliasDescription[]> {
    return this.read(() =>
      this.database.prepare<[], AliasDescription>('SELECT alias, collection FROM vector_aliases ORDER BY alias').all(),
    );
  }

  async createSnapshot(collection: string, filePath: string): Promise<SnapshotDescription> {
    const target = path.resolve(filePath);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // Written beside the target and renamed, so a crash never leaves a half-written snapshot at filePath.
    const partial = `${target}.partial-${process.pid}`;
    fs.rmSync(partial, { force: true });
    this.database.prepare('ATTACH DATABASE ? AS snapshot').run(partial);
    try {
      const description = this.read(() =>
        this.database.transaction((): SnapshotDescription => {
          const row = this.resolve(collection);
          const contentVersion = contentVersionOf(row, row.points_count, row.digest_sum);
          this.database.exec(`
            CREATE TABLE snapshot.snapshot_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE snapshot.points (
              id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, norm REAL NOT NULL, vector BLOB NOT NULL, payload BLOB NOT NULL
            );
          `);
          const info = this.database.prepare('INSERT INTO snapshot.snapshot_info (key, value) VALUES (?, ?)');
          info.run('format', snapshotFormat);
          info.run('collection', row.name);
          info.run('size', String(row.size));
          info.run('distance', row.distance);
          info.run('content_version', contentVersion);
          this.database.exec(
            `INSERT INTO snapshot.points SELECT id, content_hash, norm, vector, payload FROM ${pointsTable(row)}`,
          );
          return { path: target, collection: row.name, pointsCount: row.points_count, contentVersion };
        })(),
      );
      this.database.prepare('DETACH DATABASE snapshot').run();
      fs.renameSync(partial, target);
      return description;
    } catch (error) {
      if (this.database.inTransaction) this.database.exec('ROLLBACK');
      detachQuietly(this.database);
      fs.rmSync(partial, { force: true });
      throw error;
    }
  }

  async restoreSnapshot(filePath: string, collection: string): Promise<void> {
    validateCollectionName(collection);
    const source = path.resolve(filePath);
    checkSnapshotFile(source);
    this.database.prepare('ATTACH DATABASE ? AS snapshot').run(source);
    try {
      this.write(`restore snapshot into '${collection}'`, () => {
        const info = readSnapshotInfo(this.database, source);
        const params = { size: info.size, distance: info.distance };
        const existing = this.findCollection(collection);
        // Replaced in place rather than deleted, so aliases pointing at the collection keep pointing at it.
        const row =
          existing === undefined ? this.insertCollection(collection, params) : this.emptyCollection(existing, params);
        const table = pointsTable(row);
        this.database.exec(
          `INSERT INTO ${table} (id, content_hash, norm, vector, payload) ` +
            'SELECT id, content_hash, norm, vector, payload FROM snapshot.points',
        );
        const insertValue = this.valueInserter(row);
        let digestSum = emptyDigestSum;
        let pointsCount = 0;
        const restored = this.database
          .prepare<[], StoredPointRow & { point_key: number; content_hash: string }>(
            `SELECT point_key, id, content_hash, vector, json(payload) AS payload FROM ${table}`,
          )
          .all();
        for (const point of restored) {
          // Rehashed from the stored bytes, so a damaged vector or payload is caught here, not at query time.
          const payload = JSON.parse(point.payload) as Payload;
          const contentHash = pointContentHash(point.id, toFloat32Array(point.vector), payload);
          if (contentHash !== point.content_hash) {
            throw new SnapshotError(source, `point '${point.id}' does not match its recorded digest (corrupt file?)`);
          }
          digestSum = addToDigestSum(digestSum, contentHash);
          insertValue(point.point_key, payload);
          pointsCount++;
        }
        if (contentVersionOf(params, pointsCount, digestSum) !== info.contentVersion) {
          throw new SnapshotError(source, 'its points do not match the content version it records (corrupt file?)');
        }
        this.saveDigest(collection, pointsCount, digestSum);
      });
    } finally {
      detachQuietly(this.database);
    }
  }

  async contentVersion(collection: string): Promise<string> {
    return this.read(() => {
      const row = this.resolve(collection);
      return contentVersionOf(row, row.points_count, row.digest_sum);
    });
  }

  async close(): Promise<void> {
    if (this.database.open) this.database.close();
  }

  private exactQuery(collection: string, request: QueryRequest): ScoredPoint[] {
    const row = this.resolve(collection);
    const query = toStoredVector(request.vector, row, row.name, 'The query vector');
    const queryBlob = toBlob(query);
    const parameters: unknown[] = [];
    // Each expression orders ascending by `distance`, converted to Qdrant's score below.
    let distanceExpression: string;
    if (row.distance === 'Euclid') {
      distanceExpression = 'vec_distance_l2(point.vector, ?)';
      parameters.push(queryBlob);
    } else if (row.distance === 'Cosine' && vectorNorm(query) > 0) {
      // Stored and query vectors are unit length, so |a - b|^2 = 2 - 2 cos: ranking by sqlite-vec's L2
      // (cheaper than its cosine) is ranking by cosine. A zero stored vector is placed at sqrt(2), cosine 0.
      distanceExpression = `CASE WHEN point.norm = 0 THEN ${Math.SQRT2} ELSE vec_distance_l2(point.vector, ?) END`;
      parameters.push(queryBlob);
    } else if (row.distance === 'Cosine') {
      // A zero query vector has no direction: every point scores 0.
      distanceExpression = `${Math.SQRT2}`;
    } else {
      // sqlite-vec has no dot product; dot = |a| |b| cos, from the stored norm and the cosine distance.
      distanceExpression = '-(point.norm * ? * (1.0 - coalesce(vec_distance_cosine(point.vector, ?), 1.0)))';
      parameters.push(vectorNorm(query), queryBlob);
    }
    const where = compileFilter(request.filter, valuesTable(row), parameters);
    parameters.push(request.limit);
    const nearest = this.database
      .prepare<unknown[], { id: string; distance: number }>(
        `SELECT point.id AS id, ${distanceExpression} AS distance FROM ${pointsTable(row)} AS point ` +
          `WHERE ${where} ORDER BY distance, id LIMIT ?`,
      )
      .all(...parameters);
    const withPayload = request.withPayload ?? true;
    const withVector = request.withVector ?? false;
    const select = this.database.prepare<[string], StoredPointRow>(
      `SELECT id, vector, json(payload) AS payload FROM ${pointsTable(row)} WHERE id = ?`,
    );
    return nearest.map(({ id, distance }) => {
      const score =
        row.distance === 'Euclid' ? distance : row.distance === 'Cosine' ? cosineFromUnitDistance(distance) : -distance;
      if (!withPayload && !withVector) return { id, score, payload: {} };
      return { ...toRecord(select.get(id)!, withPayload, withVector), score };
    });
  }

  private upsertBatch(collection: string, validatedWith: VectorParams, points: readonly StoredPoint[]): void {
    const row = this.resolve(collection);
    if (row.size !== validatedWith.size || row.distance !== validatedWith.distance) {
      // Recreated by another process while this upsert was running; its vectors were checked against the old params.
      throw new CollectionConfigMismatchError(row.name, describeParams(row), describeParams(validatedWith));
    }
    const table = pointsTable(row);
    const selectHash = this.database.prepare<[string], { content_hash: string }>(
      `SELECT content_hash FROM ${table} WHERE id = ?`,
    );
    const upsert = this.database.prepare<[string, string, number, Buffer, string], { point_key: number }>(
      `INSERT INTO ${table} (id, content_hash, norm, vector, payload) VALUES (?, ?, ?, ?, jsonb(?)) ` +
        'ON CONFLICT (id) DO UPDATE SET content_hash = excluded.content_hash, norm = excluded.norm, ' +
        'vector = excluded.vector, payload = excluded.payload RETURNING point_key',
    );
    const removeValues = this.database.prepare<[number]>(`DELETE FROM ${valuesTable(row)} WHERE point_key = ?`);
    const insertValue = this.valueInserter(row);
    let digestSum = row.digest_sum;
    let pointsCount = row.points_count;
    for (const { id, vector, payload } of points) {
      const contentHash = pointContentHash(id, vector, payload);
      const existing = selectHash.get(id);
      // Identical content: no write, so the content version (and the evaluation cache) stays valid.
      if (existing?.content_hash === contentHash) continue;
      if (existing === undefined) pointsCount++;
      else digestSum = subtractFromDigestSum(digestSum, existing.content_hash);
      digestSum = addToDigestSum(digestSum, contentHash);
      const { point_key: pointKey } = upsert.get(
        id,
        contentHash,
        vectorNorm(vector),
        toBlob(vector),
        JSON.stringify(payload),
      )!;
      if (existing !== undefined) removeValues.run(pointKey);
      insertValue(pointKey, payload);
    }
    this.saveDigest(row.name, pointsCount, digestSum);
  }

  private findCollection(name: string): CollectionRow | undefined {
    return this.database.prepare<[string], CollectionRow>('SELECT * FROM vector_collections WHERE name = ?').get(name);
  }

  private findAlias(alias: string): string | undefined {
    return this.database
      .prepare<[string], { collection: string }>('SELECT collection FROM vector_aliases WHERE alias = ?')
      .get(alias)?.collection;
  }

  /** A collection by its name or an alias of it. */
  private resolve(nameOrAlias: string): CollectionRow {
    validateCollectionName(nameOrAlias);
    const row =
      this.findCollection(nameOrAlias) ??
      this.database
        .prepare<[string], CollectionRow>(
          'SELECT c.* FROM vector_aliases AS a JOIN vector_collections AS c ON c.name = a.collection WHERE a.alias = ?',
        )
        .get(nameOrAlias);
    if (row === undefined) throw new CollectionNotFoundError(nameOrAlias);
    return row;
  }

  private checkAliasTarget(alias: string, collection: string): void {
    if (this.findCollection(alias) !== undefined) {
      throw new VectorAliasConflictError(`Cannot create alias '${alias}': a collection has that name.`);
    }
    if (this.findCollection(collection) === undefined) throw new CollectionNotFoundError(collection);
  }

  private insertCollection(name: string, params: VectorParams): CollectionRow {
    if (this.findAlias(name) !== undefined) {
      throw new VectorAliasConflictError(
        `Cannot create collection '${name}': an alias has that name; delete the alias first.`,
      );
    }
    const tableKey = this.database
      .prepare<[], { next: number }>('SELECT coalesce(max(table_key), 0) + 1 AS next FROM vector_collections')
      .get()!.next;
    this.database
      .prepare(
        'INSERT INTO vector_collections (name, table_key, size, distance, points_count, digest_sum) VALUES (?, ?, ?, ?, 0, ?)',
      )
      .run(name, tableKey, params.size, params.distance, emptyDigestSum);
    const row = this.findCollection(name)!;
    this.createPointsTable(row);
    return row;
  }

  private emptyCollection(row: CollectionRow, params: VectorParams): CollectionRow {
    this.dropPointsTables(row);
    this.database
      .prepare('UPDATE vector_collections SET size = ?, distance = ?, points_count = 0, digest_sum = ? WHERE name = ?')
      .run(params.size, params.distance, emptyDigestSum, row.name);
    this.createPointsTable(row);
    return this.findCollection(row.name)!;
  }

  private createPointsTable(row: CollectionRow): void {
    // An explicit INTEGER PRIMARY KEY keeps point keys stable across VACUUM, which the payload index relies on.
    // The vector comes before the payload so a scan for vectors stays within the row's first page.
    // `value` has no declared type, so SQLite keeps each value's own type (no affinity conversion).
    this.database.exec(`
      CREATE TABLE ${pointsTable(row)} (
        point_key INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        content_hash TEXT NOT NULL,
        norm REAL NOT NULL,
        vector BLOB NOT NULL,
        payload BLOB NOT NULL
      );
      CREATE TABLE ${valuesTable(row)} (point_key INTEGER NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, value);
      CREATE INDEX ${valuesTable(row)}_lookup ON ${valuesTable(row)} (key, type, value);
      CREATE INDEX ${valuesTable(row)}_point ON ${valuesTable(row)} (point_key);
    `);
  }

  private dropPointsTables(row: CollectionRow): void {
    this.database.exec(`DROP TABLE IF EXISTS ${pointsTable(row)}; DROP TABLE IF EXISTS ${valuesTable(row)};`);
  }

  /** Writes a point's payload into the collection's payload index (see payload-index.ts). */
  private valueInserter(row: CollectionRow): (pointKey: number, payload: Payload) => void {
    const insert = this.database.prepare<[number, string, string, string | number]>(
      `INSERT INTO ${valuesTable(row)} (point_key, key, type, value) VALUES (?, ?, ?, ?)`,
    );
    return (pointKey, payload) => {
      for (const leaf of payloadLeaves(payload)) insert.run(pointKey, leaf.key, leaf.type, leaf.value);
    };
  }

  private dropCollection(row: CollectionRow): void {
    this.dropPointsTables(row);
    this.database.prepare('DELETE FROM vector_collections WHERE name = ?').run(row.name);
  }

  private saveDigest(name: string, pointsCount: number, digestSum: string): void {
    this.database
      .prepare('UPDATE vector_collections SET points_count = ?, digest_sum = ? WHERE name = ?')
      .run(pointsCount, digestSum, name);
  }

  /** One deferred transaction, so a read sees one snapshot even while another process recreates a collection. */
  private read<T>(operation: () => T): T {
    try {
      return this.database.transaction(operation)();
    } catch (error) {
      throw classifySqliteError(error, 'read the vector store');
    }
  }

  /** IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout instead of deadlocking. */
  private write<T>(what: string, operation: () => T): T {
    try {
      return this.database.transaction(operation).immediate();
    } catch (error) {
      throw classifySqliteError(error, what);
    }
  }
}

interface StoredPointRow {
  id: string;
  vector: Buffer;
  payload: string;
}

function valuesTable(row: CollectionRow): string {
  return `vector_values_${Number(row.table_key)}`;
}

function pointsTable(row: CollectionRow): string {
  // table_key is an integer from our own table, never user text, so it is safe to interpolate.
  return `vector_points_${Number(row.table_key)}`;
}

/** cos = 1 - d^2 / 2 for unit vectors; the exact sqrt(2) placed for zero vectors maps to exactly 0. */
function cosineFromUnitDistance(distance: number): number {
  return distance === Math.SQRT2 ? 0 : 1 - (distance * distance) / 2;
}

/** Copies, because a Buffer from SQLite need not be aligned for a Float32Array view. */
function toFloat32Array(bytes: Buffer): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function toBlob(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

function toRecord(stored: StoredPointRow, withPayload: boolean, withVector: boolean): PointRecord {
  const record: PointRecord = { id: stored.id, payload: withPayload ? (JSON.parse(stored.payload) as Payload) : {} };
  if (withVector) record.vector = Array.from(toFloat32Array(stored.vector));
  return record;
}

function describeParams(params: VectorParams): string {
  return `size ${params.size} and distance ${params.distance}`;
}

function checkSnapshotFile(source: string): void {
  let header: Buffer;
  try {
    const descriptor = fs.openSync(source, 'r');
    try {
      header = Buffer.alloc(16);
      fs.readSync(descriptor, header, 0, 16, 0);
    } finally {
      fs.closeSync(descriptor);
    }
  } catch (error) {
    throw new SnapshotError(source, 'the file cannot be read', { cause: error });
  }
  if (header.toString('latin1') !== sqliteHeader) {
    throw new SnapshotError(
      source,
      'it is not a sqlite-vec snapshot (a Qdrant snapshot is restored through the Qdrant store)',
    );
  }
}

function readSnapshotInfo(
  database: Database.Database,
  source: string,
): { size: number; distance: Distance; contentVersion: string } {
  let entries: Map<string, string>;
  try {
    entries = new Map(
      database
        .prepare<[], { key: string; value: string }>('SELECT key, value FROM snapshot.snapshot_info')
        .all()
        .map((entry) => [entry.key, entry.value]),
    );
  } catch (error) {
    throw new SnapshotError(source, 'it is a SQLite file but not a weft vector snapshot', { cause: error });
  }
  if (entries.get('format') !== snapshotFormat) {
    throw new SnapshotError(source, `unknown snapshot format ${JSON.stringify(entries.get('format'))}`);
  }
  const params = validateVectorParams({
    size: Number(entries.get('size')),
    distance: entries.get('distance') as Distance,
  });
  return { ...params, contentVersion: entries.get('content_version') ?? '' };
}

function detachQuietly(database: Database.Database): void {
  try {
    database.prepare('DETACH DATABASE snapshot').run();
  } catch {
    // Not attached: nothing to undo.
  }
}

function classifySqliteError(error: unknown, what: string): unknown {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_BUSY_SNAPSHOT') {
    return new VectorStoreUnavailableError(
      `The vector store is busy (another process holds its write lock) while trying to ${what}; retry later.`,
      { cause: error },
    );
  }
  return error;
}
