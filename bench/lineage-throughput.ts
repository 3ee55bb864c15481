/**
 * Lineage store throughput, SQLite against PostgreSQL side by side: object publish/read (objects/s),
 * dataset rows publish/read (rows/s), and a dataset republished after one changed row against a full publish.
 * Run: npx tsx bench/lineage-throughput.ts [--objects 2000] [--rows 100000]
 * PostgreSQL comes from WEFT_TEST_POSTGRES_URL, else scripts/ensure-postgres.sh; without it only SQLite runs.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openLineageStore } from '../lib/lineage';

interface Measurements {
  objectPublishPerSecond: number;
  objectReadPerSecond: number;
  rowPublishPerSecond: number;
  rowReadPerSecond: number;
  fullPublishSeconds: number;
  republishSeconds: number;
  patchSeconds: number;
}

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const result = await work();
  return [result, Number(process.hrtime.bigint() - start) / 1e9];
}

async function measure(
  url: string,
  blobDirectory: string,
  objectCount: number,
  rowCount: number,
): Promise<Measurements> {
  const store = await openLineageStore(url, { blobDirectory });
  try {
    const [refs, publishSeconds] = await timed(async () => {
      const published: string[] = [];
      for (let index = 0; index < objectCount; index++) {
        const value = {
          _type: 'ChatModel',
          temperature: index / objectCount,
          max_new_tokens: 256,
          prompt: `prompt ${index}`,
        };
        published.push((await store.objects.publish({ name: `Model${index % 20}`, value })).ref);
      }
      return published;
    });
    const [, readSeconds] = await timed(async () => {
      for (const ref of refs) await store.objects.get(ref);
    });
    const rows = Array.from({ length: rowCount }, (_, index) => ({
      id: index,
      question: `What does document ${index} say about topic ${index % 97}?`,
      answer: `Document ${index} says ${crypto.createHash('md5').update(String(index)).digest('hex')}.`,
    }));
    const [full, fullPublishSeconds] = await timed(() => store.datasets.publish({ name: 'qa-bench', rows }));
    const [, rowReadSeconds] = await timed(() => store.datasets.rows(full.ref));
    rows[Math.floor(rowCount / 2)] = { ...rows[Math.floor(rowCount / 2)]!, answer: 'changed' };
    const [republished, republishSeconds] = await timed(() => store.datasets.publish({ name: 'qa-bench', rows }));
    if (republished.newRowCount !== 1) throw new Error(`republish wrote ${republished.newRowCount} rows, expected 1`);
    const [patched, patchSeconds] = await timed(() =>
      store.datasets.patch({
        ref: republished.ref,
        replace: { [Math.floor(rowCount / 3)]: { id: -1, question: 'patched', answer: 'patched' } },
      }),
    );
    if (patched.newRowCount !== 1) throw new Error(`patch wrote ${patched.newRowCount} rows, expected 1`);
    return {
      objectPublishPerSecond: objectCount / publishSeconds,
      objectReadPerSecond: objectCount / readSeconds,
      rowPublishPerSecond: rowCount / fullPublishSeconds,
      rowReadPerSecond: rowCount / rowReadSeconds,
      fullPublishSeconds,
      republishSeconds,
      patchSeconds,
    };
  } finally {
    await store.close();
  }
}

function postgresUrl(): string | undefined {
  if (process.env.WEFT_TEST_POSTGRES_URL) return process.env.WEFT_TEST_POSTGRES_URL;
  try {
    return execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'ensure-postgres.sh')], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return undefined;
  }
}

const format = (value: number): string => (value >= 100 ? value.toFixed(0) : value.toFixed(2));

async function main(): Promise<void> {
  const objectCount = argument('objects', 2000);
  const rowCount = argument('rows', 100_000);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-lineage-bench-'));
  const results: Record<string, Measurements> = {};
  try {
    results.sqlite = await measure(
      `sqlite://${path.join(folder, 'lineage.db')}`,
      path.join(folder, 'blobs'),
      objectCount,
      rowCount,
    );
    const base = postgresUrl();
    if (base) {
      const schema = `lineage_bench_${crypto.randomBytes(4).toString('hex')}`;
      const url = new URL(base);
      url.searchParams.set('schema', schema);
      try {
        results.postgres = await measure(url.toString(), path.join(folder, 'blobs'), objectCount, rowCount);
      } finally {
        const client = new pg.Client({ connectionString: base });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      }
    } else {
      process.stdout.write('PostgreSQL not available (set WEFT_TEST_POSTGRES_URL): SQLite only.\n');
    }
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
  process.stdout.write(`lineage throughput: ${objectCount} objects, ${rowCount}-row dataset\n\n`);
  const metrics: [string, keyof Measurements][] = [
    ['object publish (objects/s)', 'objectPublishPerSecond'],
    ['object read (objects/s)', 'objectReadPerSecond'],
    ['dataset publish (rows/s)', 'rowPublishPerSecond'],
    ['dataset read (rows/s)', 'rowReadPerSecond'],
    ['full dataset publish (s)', 'fullPublishSeconds'],
    ['republish after 1 changed row (s)', 'republishSeconds'],
    ['patch of 1 row (s)', 'patchSeconds'],
  ];
  // One direction for every row: PostgreSQL's speed relative to SQLite (above 1: PostgreSQL is faster).
  const lines = [['metric', 'sqlite', 'postgres', 'postgres speed vs sqlite']];
  for (const [label, key] of metrics) {
    const sqlite = results.sqlite![key];
    const postgres = results.postgres?.[key];
    const speed = postgres === undefined ? undefined : key.endsWith('Seconds') ? sqlite / postgres : postgres / sqlite;
    lines.push([
      label,
      format(sqlite),
      postgres === undefined ? '-' : format(postgres),
      speed === undefined ? '-' : `${speed.toFixed(2)}x`,
    ]);
  }
  const widths = lines[0]!.map((_, column) => Math.max(...lines.map((line) => line[column]!.length)));
  for (const line of lines)
    process.stdout.write(`${line.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')}\n`);
  process.stdout.write('\none changed row in the dataset vs a full publish of it (speed-up, higher is better):\n');
  for (const [backend, result] of Object.entries(results)) {
    const republish = (result.fullPublishSeconds / result.republishSeconds).toFixed(1);
    const patch = (result.fullPublishSeconds / result.patchSeconds).toFixed(1);
    process.stdout.write(
      `  ${backend}: republishing all rows ${republish}x faster, datasets.patch ${patch}x faster ` +
        `(full ${format(result.fullPublishSeconds)} s, republish ${format(result.republishSeconds)} s, patch ${format(result.patchSeconds)} s)\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
