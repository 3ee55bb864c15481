import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  CollectionNotFoundError,
  QdrantVectorStore,
  SnapshotError,
  SqliteVectorStore,
  VectorStoreUnavailableError,
} from '../../lib/vectors';

/**
 * How the Qdrant adapter classifies failures, checked without a Qdrant server: against a closed port and
 * a stub that answers like an unhealthy server. The Qdrant behaviour itself is the contract run (QDRANT_URL).
 */
describe('QdrantVectorStore failure classification (no server needed)', () => {
  let stub: http.Server;
  let stubUrl: string;
  const seenApiKeys: (string | undefined)[] = [];

  beforeAll(async () => {
    stub = http.createServer((request, response) => {
      seenApiKeys.push(request.headers['api-key'] as string | undefined);
      const reply = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(body));
      };
      if (request.url === '/aliases') return reply(200, { result: { aliases: [] }, status: 'ok', time: 0 });
      if (request.url?.endsWith('/exists')) return reply(200, { result: { exists: false }, status: 'ok', time: 0 });
      reply(503, { status: { error: 'Service unavailable: shard is being recovered' }, time: 0 });
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => stub.close(resolve));
  });

  it('reports an unreachable server as retryable', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = http.createServer();
      probe.listen(0, '127.0.0.1', () => {
        const port = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(port));
      });
    });
    const store = new QdrantVectorStore({ url: `http://127.0.0.1:${closedPort}` });
    const error = await store.listCollections().then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    expect(error).toBeInstanceOf(VectorStoreUnavailableError);
    expect((error as VectorStoreUnavailableError).retryable).toBe(true);
    expect((error as Error).message).toContain(`127.0.0.1:${closedPort} could not be reached`);
  });

  it('reports a server error as retryable with its message, and sends the API key', async () => {
    const store = new QdrantVectorStore({ url: stubUrl, apiKey: 'secret-key' });
    const error = await store.listCollections().then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    expect(error).toBeInstanceOf(VectorStoreUnavailableError);
    expect((error as Error).message).toContain('HTTP 503: Service unavailable: shard is being recovered');
    expect(seenApiKeys.at(-1)).toBe('secret-key');
  });

  it('names an unknown collection in a non-retryable error', async () => {
    const store = new QdrantVectorStore({ url: stubUrl });
    await expect(store.query('chunks', { vector: [1, 2, 3], limit: 1 })).rejects.toThrow(CollectionNotFoundError);
    await expect(store.getCollection('chunks')).rejects.toThrow(/'chunks' does not exist/);
  });

  it('refuses a sqlite-vec snapshot before uploading it', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-qdrant-offline-'));
    try {
      const embedded = SqliteVectorStore.open(path.join(directory, 'vectors.db'));
      await embedded.createCollection('chunks', { size: 2, distance: 'Dot' });
      const snapshot = await embedded.createSnapshot('chunks', path.join(directory, 'chunks.snapshot'));
      await embedded.close();
      const requestsBefore = seenApiKeys.length;
      const store = new QdrantVectorStore({ url: stubUrl });
      await expect(store.restoreSnapshot(snapshot.path, 'chunks')).rejects.toThrow(SnapshotError);
      await expect(store.restoreSnapshot(snapshot.path, 'chunks')).rejects.toThrow(/sqlite-vec snapshot/);
      expect(seenApiKeys.length).toBe(requestsBefore);
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});
