/**
 * sqlite-vec query latency against a brute-force TypeScript scan over the same vectors, side by side.
 *
 *   npx tsx bench/vectors-query.ts [--sizes 10000,100000] [--queries 30] [--dimension 384]
 *
 * Both sides are exact, so the bench also checks that they return the same ids. The ratio is
 * sqlite-vec time / brute-force time (below 1: sqlite-vec is faster).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type Filter, type PointStruct, SqliteVectorStore } from '../lib/vectors';
import { createSeededRandom as createRandom } from '../lib/inference/sampling';

interface BenchOptions {
  sizes: number[];
  queries: number;
  dimension: number;
}

const categoryCount = 10;
const limit = 10;

function parseOptions(argv: readonly string[]): BenchOptions {
  const options: BenchOptions = { sizes: [10_000, 100_000], queries: 30, dimension: 384 };
  for (let index = 0; index < argv.length; index += 2) {
    const value = argv[index + 1];
    if (argv[index] === '--sizes') options.sizes = value.split(',').map(Number);
    else if (argv[index] === '--queries') options.queries = Number(value);
    else if (argv[index] === '--dimension') options.dimension = Number(value);
    else throw new Error(`Unknown option ${argv[index]}; use --sizes, --queries or --dimension.`);
  }
  return options;
}

function pointId(index: number): string {
  const hex = index.toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${hex}`;
}

/** Normalised vectors laid out in one Float32Array: the brute force's "index". */
function randomUnitVectors(random: () => number, count: number, dimension: number): Float32Array {
  const vectors = new Float32Array(count * dimension);
  for (let row = 0; row < count; row++) {
    let sumOfSquares = 0;
    for (let column = 0; column < dimension; column++) {
      const value = random() * 2 - 1;
      vectors[row * dimension + column] = value;
      sumOfSquares += value * value;
    }
    const norm = Math.sqrt(sumOfSquares);
    for (let column = 0; column < dimension; column++) vectors[row * dimension + column] /= norm;
  }
  return vectors;
}

/** Exact top-k by cosine (the vectors are unit length, so a dot product), keeping a small sorted list. */
function bruteForceTopK(
  vectors: Float32Array,
  categories: Uint8Array,
  dimension: number,
  query: Float32Array,
  category: number | undefined,
): string[] {
  const bestScores: number[] = [];
  const bestRows: number[] = [];
  const count = categories.length;
  for (let row = 0; row < count; row++) {
    if (category !== undefined && categories[row] !== category) continue;
    let score = 0;
    const offset = row * dimension;
    for (let column = 0; column < dimension; column++) score += vectors[offset + column] * query[column];
    if (bestScores.length === limit && score <= bestScores[limit - 1]) continue;
    let position = bestScores.length;
    while (position > 0 && bestScores[position - 1] < score) position--;
    bestScores.splice(position, 0, score);
    bestRows.splice(position, 0, row);
    if (bestScores.length > limit) {
      bestScores.pop();
      bestRows.pop();
    }
  }
  return bestRows.map((row) => pointId(row));
}

interface Timing {
  medianMilliseconds: number;
  p95Milliseconds: number;
}

function summarize(samples: number[]): Timing {
  const sorted = [...samples].sort((left, right) => left - right);
  return {
    medianMilliseconds: sorted[Math.floor(sorted.length / 2)],
    p95Milliseconds: sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)],
  };
}

async function timeQueries(queries: Float32Array[], run: (query: Float32Array) => Promise<string[]>) {
  const warmUp = Math.min(3, queries.length);
  for (let index = 0; index < warmUp; index++) await run(queries[index]);
  const samples: number[] = [];
  const results: string[][] = [];
  for (const query of queries) {
    const start = performance.now();
    results.push(await run(query));
    samples.push(performance.now() - start);
  }
  return { timing: summarize(samples), results };
}

async function benchSize(size: number, options: BenchOptions, directory: string) {
  const random = createRandom(size);
  const { dimension } = options;
  const vectors = randomUnitVectors(random, size, dimension);
  const categories = Uint8Array.from({ length: size }, (_, index) => index % categoryCount);
  const queries = Array.from({ length: options.queries }, () => randomUnitVectors(random, 1, dimension));

  const store = SqliteVectorStore.open(path.join(directory, `vectors-${size}.db`));
  const collection = `bench-${size}`;
  await store.recreateCollection(collection, { size: dimension, distance: 'Cosine' });
  const buildStart = performance.now();
  const batch = 2_000;
  for (let start = 0; start < size; start += batch) {
    const points: PointStruct[] = [];
    for (let row = start; row < Math.min(size, start + batch); row++) {
      points.push({
        id: pointId(row),
        vector: vectors.subarray(row * dimension, (row + 1) * dimension),
        payload: { category: `category-${categories[row]}`, rank: row },
      });
    }
    await store.upsert(collection, points, { batchSize: batch });
  }
  const buildSeconds = (performance.now() - buildStart) / 1000;

  const rows: string[][] = [];
  for (const filtered of [false, true]) {
    const filter: Filter | undefined = filtered
      ? { must: [{ key: 'category', match: { value: 'category-3' } }] }
      : undefined;
    const sqlite = await timeQueries(queries, async (query) =>
      (await store.query(collection, { vector: query, limit, filter, withPayload: false })).map((hit) => hit.id),
    );
    const bruteForce = await timeQueries(queries, async (query) =>
      bruteForceTopK(vectors, categories, dimension, query, filtered ? 3 : undefined),
    );
    const agreeing = sqlite.results.filter((ids, index) => ids.join() === bruteForce.results[index].join()).length;
    rows.push([
      size.toLocaleString('en'),
      filtered ? 'category (10%)' : 'none',
      sqlite.timing.medianMilliseconds.toFixed(1),
      sqlite.timing.p95Milliseconds.toFixed(1),
      bruteForce.timing.medianMilliseconds.toFixed(1),
      bruteForce.timing.p95Milliseconds.toFixed(1),
      (sqlite.timing.medianMilliseconds / bruteForce.timing.medianMilliseconds).toFixed(2),
      `${agreeing}/${queries.length}`,
    ]);
  }
  await store.close();
  return { rows, buildSeconds, fileMegabytes: fs.statSync(path.join(directory, `vectors-${size}.db`)).size / 2 ** 20 };
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padStart(widths[column])).join('  ');
  console.log(line(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of rows) console.log(line(row));
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-vectors-'));
  console.log(
    `sqlite-vec exact query vs brute-force TypeScript scan — dimension ${options.dimension}, top ${limit}, ` +
      `Cosine, ${options.queries} queries each, ${os.cpus().length} CPUs, Node ${process.version}`,
  );
  try {
    const rows: string[][] = [];
    for (const size of options.sizes) {
      const result = await benchSize(size, options, directory);
      console.log(
        `built ${size.toLocaleString('en')} points in ${result.buildSeconds.toFixed(1)} s ` +
          `(${result.fileMegabytes.toFixed(0)} MiB file)`,
      );
      rows.push(...result.rows);
    }
    console.log('');
    printTable(
      ['points', 'filter', 'sqlite-vec p50 ms', 'p95 ms', 'brute-force p50 ms', 'p95 ms', 'ratio', 'same ids'],
      rows,
    );
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
