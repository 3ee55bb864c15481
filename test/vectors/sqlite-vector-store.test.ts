import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  IncompatibleVectorStoreError,
  SnapshotError,
  SqliteVectorStore,
  VectorStoreUnavailableError,
} from '../../lib/vectors';
import { createRandom, randomPoints } from './vector-store-contract';

/** Behaviour of the embedded store beyond the shared contract: the file, locking, snapshots on disk. */
describe('SqliteVectorStore', () => {
  let directory: string;
  let databasePath: string;
  const openStores: SqliteVectorStore[] = [];
  const open = (options?: { busyTimeoutMilliseconds?: number }): SqliteVectorStore => {
    const store = SqliteVectorStore.open(databasePath, options);
    openStores.push(store);
    return store;
  };

  beforeEach(() => {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-sqlite-vectors-'));
    databasePath = path.join(directory, 'nested', 'vectors.db');
  });

  afterEach(async () => {
    for (const store of openStores.splice(0)) await store.close();
    fs.rmSync(directory, { recursive: true, force: true });
  });

  it('keeps collections in one WAL-mode file that survives a reopen and is shared between processes', async () => {
    const writer = open();
    await writer.createCollection('chunks', { size: 4, distance: 'Cosine' });
    await writer.upsert('chunks', randomPoints(createRandom(1), 25, 4));
    const version = await writer.contentVersion('chunks');

    const reader = open();
    expect(await reader.count('chunks')).toBe(25);
    expect(await reader.contentVersion('chunks')).toBe(version);
    await writer.close();

    const reopened = open();
    expect(await reopened.getCollection('chunks')).toEqual({
      name: 'chunks',
      size: 4,
      distance: 'Cosine',
      pointsCount: 25,
    });
    const raw = new Database(databasePath, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('refuses a file written with another layout version instead of misreading it', async () => {
    fs.mkdirSync(path.dirname(databasePath), { recursive: true });
    const future = new Database(databasePath);
    future.pragma('user_version = 7');
    future.close();
    expect(() => open()).toThrow(IncompatibleVectorStoreError);
    expect(() => open()).toThrow(/layout version 7, but this weft reads version 1/);
  });

  it('fails a write retryably when another process holds the write lock past the busy timeout', async () => {
    const store = open({ busyTimeoutMilliseconds: 50 });
    await store.createCollection('chunks', { size: 4, distance: 'Dot' });
    const otherProcess = new Database(databasePath);
    otherProcess.exec('BEGIN IMMEDIATE');
    try {
      const error = await store.upsert('chunks', randomPoints(createRandom(2), 3, 4)).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(VectorStoreUnavailableError);
      expect((error as VectorStoreUnavailableError).retryable).toBe(true);
      expect((error as Error).message).toMatch(/busy.*upsert into 'chunks'.*retry/);
    } finally {
      otherProcess.exec('ROLLBACK');
      otherProcess.close();
    }
    await store.upsert('chunks', randomPoints(createRandom(2), 3, 4));
    expect(await store.count('chunks')).toBe(3);
  });

  it('keeps aliases pointing at a collection restored from a snapshot', async () => {
    const store = open();
    await store.createCollection('chunks-v1', { size: 4, distance: 'Euclid' });
    const points = randomPoints(createRandom(3), 10, 4);
    await store.upsert('chunks-v1', points);
    await store.switchAlias('production', 'chunks-v1');
    const snapshotPath = path.join(directory, 'snapshots', 'chunks-v1.snapshot');
    await store.createSnapshot('production', snapshotPath);
    await store.deletePoints('chunks-v1', [points[0].id]);

    await store.restoreSnapshot(snapshotPath, 'chunks-v1');
    expect(await store.listAliases()).toEqual([{ alias: 'production', collection: 'chunks-v1' }]);
    expect(await store.count('production')).toBe(10);
  });

  it('refuses a snapshot whose points were altered and leaves the collection as it was', async () => {
    const store = open();
    await store.createCollection('chunks', { size: 4, distance: 'Cosine' });
    await store.upsert('chunks', randomPoints(createRandom(5), 8, 4));
    const snapshotPath = path.join(directory, 'chunks.snapshot');
    await store.createSnapshot('chunks', snapshotPath);
    const tampering = new Database(snapshotPath);
    tampering.prepare('UPDATE points SET payload = jsonb(\'{"index": 99}\') WHERE rowid = 3').run();
    tampering.close();
    await store.upsert('chunks', randomPoints(createRandom(6), 1, 4));
    const before = await store.contentVersion('chunks');

    await expect(store.restoreSnapshot(snapshotPath, 'chunks')).rejects.toThrow(/does not match its recorded digest/);
    expect(await store.count('chunks')).toBe(9);
    expect(await store.contentVersion('chunks')).toBe(before);
  });

  it('refuses files that are not its snapshots with SnapshotError', async () => {
    const store = open();
    const notSnapshot = path.join(directory, 'qdrant.snapshot');
    fs.writeFileSync(notSnapshot, 'a tar archive from Qdrant');
    await expect(store.restoreSnapshot(notSnapshot, 'chunks')).rejects.toThrow(SnapshotError);
    await expect(store.restoreSnapshot(notSnapshot, 'chunks')).rejects.toThrow(/not a sqlite-vec snapshot/);
    await expect(store.restoreSnapshot(path.join(directory, 'missing'), 'chunks')).rejects.toThrow(/cannot be read/);
    const otherDatabase = path.join(directory, 'other.db');
    new Database(otherDatabase).exec('CREATE TABLE unrelated (x)');
    await expect(store.restoreSnapshot(otherDatabase, 'chunks')).rejects.toThrow(/not a weft vector snapshot/);
    expect(await store.collectionExists('chunks')).toBe(false);
  });

  it('scores a zero vector 0 in a Cosine collection instead of failing', async () => {
    const store = open();
    await store.createCollection('chunks', { size: 3, distance: 'Cosine' });
    const [first, second] = randomPoints(createRandom(4), 2, 3);
    await store.upsert('chunks', [
      { ...first, vector: [0, 0, 0] },
      { ...second, vector: [1, 0, 0] },
    ]);
    const hits = await store.query('chunks', { vector: [1, 0, 0], limit: 2 });
    expect(hits.map((hit) => [hit.id, hit.score])).toEqual([
      [second.id, 1],
      [first.id, 0],
    ]);
    const fromZero = await store.query('chunks', { vector: [0, 0, 0], limit: 2 });
    expect(fromZero.map((hit) => hit.score)).toEqual([0, 0]);
  });
});
