import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openLineageStore, type LineageStore, type LineageStoreOptions } from '../../../lib/lineage';

export type BackendName = 'sqlite' | 'postgres';
export const BACKENDS: BackendName[] = ['sqlite', 'postgres'];

/** PostgreSQL tests fail (never skip) without a server, and say how to get one. */
export function postgresBaseUrl(): string {
  const url = process.env.WEFT_TEST_POSTGRES_URL;
  if (!url) {
    throw new Error(
      'WEFT_TEST_POSTGRES_URL is not set, so the PostgreSQL lineage tests cannot run. Run: export WEFT_TEST_POSTGRES_URL=$(bash scripts/ensure-postgres.sh)',
    );
  }
  return url;
}

export interface TestLocation {
  backend: BackendName;
  url: string;
  blobDirectory: string;
  folder: string;
  /** Removes the database (SQLite folder or PostgreSQL schema). */
  dispose(): Promise<void>;
}

/** A fresh, empty store location: a temporary SQLite file, or a new schema in the test PostgreSQL database. */
export async function createTestLocation(backend: BackendName): Promise<TestLocation> {
  // Fail before creating anything when PostgreSQL is not configured.
  const base = backend === 'postgres' ? postgresBaseUrl() : '';
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-lineage-'));
  const blobDirectory = path.join(folder, 'blobs');
  if (backend === 'sqlite') {
    return {
      backend,
      url: `sqlite://${path.join(folder, 'lineage.db')}`,
      blobDirectory,
      folder,
      dispose: async () => fs.rmSync(folder, { recursive: true, force: true }),
    };
  }
  const schema = `lineage_test_${crypto.randomBytes(6).toString('hex')}`;
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return {
    backend,
    url: url.toString(),
    blobDirectory,
    folder,
    dispose: async () => {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
      fs.rmSync(folder, { recursive: true, force: true });
    },
  };
}

export async function openTestStore(location: TestLocation, options: LineageStoreOptions = {}): Promise<LineageStore> {
  return openLineageStore(location.url, { blobDirectory: location.blobDirectory, ...options });
}
