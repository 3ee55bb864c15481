import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  VectorAliasConflictError,
  CollectionConfigMismatchError,
  CollectionNotFoundError,
  VectorDimensionMismatchError,
  InvalidCollectionNameError,
  InvalidPointIdError,
  InvalidVectorError,
  UnsupportedFilterError,
  type Distance,
  type Filter,
  type Payload,
  type PointStruct,
  type ScoredPoint,
  type VectorStore,
} from '../../lib/vectors';
import { createSeededRandom } from '../../lib/inference/sampling';

/**
 * The behaviour every VectorStore adapter must show, written once and run against each adapter.
 * `openStore` returns a store; collection names carry a per-run prefix so a shared Qdrant server is safe.
 */
export interface VectorStoreContractSubject {
  openStore: () => Promise<VectorStore>;
}

export function describeVectorStoreContract(adapter: string, subject: VectorStoreContractSubject): void {
  describe(`VectorStore contract: ${adapter}`, () => {
    let store: VectorStore;
    const runPrefix = `weft-test-${process.pid}-${Date.now().toString(36)}`;
    const name = (base: string): string => `${runPrefix}-${base}`;
    let scratchDirectory: string;

    beforeAll(async () => {
      store = await subject.openStore();
      scratchDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-vector-contract-'));
    });

    afterAll(async () => {
      if (store === undefined) return;
      for (const alias of await store.listAliases()) {
        if (alias.alias.startsWith(runPrefix)) await store.deleteAlias(alias.alias);
      }
      for (const collection of await store.listCollections()) {
        if (collection.startsWith(runPrefix)) await store.deleteCollection(collection);
      }
      await store.close();
      fs.rmSync(scratchDirectory, { recursive: true, force: true });
    });

    describe('collections', () => {
      it('creates, reports, recreates and deletes a collection', async () => {
        const collection = name('lifecycle');
        expect(await store.collectionExists(collection)).toBe(false);
        await store.createCollection(collection, { size: 4, distance: 'Cosine' });
        expect(await store.collectionExists(collection)).toBe(true);
        expect(await store.listCollections()).toContain(collection);
        await store.upsert(collection, randomPoints(createRandom(1), 5, 4));
        expect(await store.getCollection(collection)).toEqual({
          name: collection,
          size: 4,
          distance: 'Cosine',
          pointsCount: 5,
        });

        // Creating again with the same params is a no-op (a retried activity), keeping the points.
        await store.createCollection(collection, { size: 4, distance: 'Cosine' });
        expect(await store.count(collection)).toBe(5);
        await expect(store.createCollection(collection, { size: 8, distance: 'Cosine' })).rejects.toThrow(
          CollectionConfigMismatchError,
        );

        await store.recreateCollection(collection, { size: 8, distance: 'Euclid' });
        expect(await store.getCollection(collection)).toEqual({
          name: collection,
          size: 8,
          distance: 'Euclid',
          pointsCount: 0,
        });

        expect(await store.deleteCollection(collection)).toBe(true);
        expect(await store.collectionExists(collection)).toBe(false);
        expect(await store.deleteCollection(collection)).toBe(false);
      });
    });

    describe('points', () => {
      it('rejects vectors of the wrong dimension on upsert and query, naming the collection', async () => {
        const collection = name('dimensions');
        await store.createCollection(collection, { size: 4, distance: 'Cosine' });
        const upsert = store.upsert(collection, [{ id: uuidFrom(createRandom(2)), vector: [1, 2, 3] }]);
        await expect(upsert).rejects.toThrow(VectorDimensionMismatchError);
        await expect(upsert).rejects.toThrow(/3 dimensions.*'[^']*dimensions'.*4-dimensional/);
        const query = store.query(collection, { vector: [1, 2, 3, 4, 5], limit: 1 });
        await expect(query).rejects.toThrow(VectorDimensionMismatchError);
        await expect(query).rejects.toThrow(/5 dimensions/);
        expect(await store.count(collection)).toBe(0);
      });

      it('upserts idempotently by id and replaces a point given again', async () => {
        const collection = name('idempotent');
        await store.createCollection(collection, { size: 4, distance: 'Dot' });
        const points = randomPoints(createRandom(3), 20, 4);
        await store.upsert(collection, points, { batchSize: 7 });
        await store.upsert(collection, points, { batchSize: 7 });
        expect(await store.count(collection)).toBe(20);

        const replaced: PointStruct = { id: points[0].id, vector: [1, 0, 0, 0], payload: { version: 2 } };
        await store.upsert(collection, [replaced]);
        expect(await store.count(collection)).toBe(20);
        const [record] = await store.retrieve(collection, [points[0].id], { withVector: true });
        expect(record).toEqual({ id: points[0].id, payload: { version: 2 }, vector: [1, 0, 0, 0] });
      });

      it('writes nothing when one point of a large upsert is invalid', async () => {
        const collection = name('all-or-nothing');
        await store.createCollection(collection, { size: 4, distance: 'Cosine' });
        const points = randomPoints(createRandom(14), 300, 4);
        points[250] = { ...points[250], vector: [0, Number.NaN, 0, 0] };
        await expect(store.upsert(collection, points, { batchSize: 50 })).rejects.toThrow(InvalidVectorError);
        expect(await store.count(collection)).toBe(0);
      });

      it('retrieves in the order asked, skips unknown ids, accepts upper-case UUIDs and deletes by id', async () => {
        const collection = name('retrieve');
        await store.createCollection(collection, { size: 4, distance: 'Euclid' });
        const random = createRandom(4);
        const points = randomPoints(random, 6, 4);
        await store.upsert(collection, points);
        const unknown = uuidFrom(random);
        const records = await store.retrieve(collection, [points[3].id.toUpperCase(), unknown, points[1].id]);
        expect(records.map((record) => record.id)).toEqual([points[3].id, points[1].id]);
        expect(records[0].payload).toEqual(points[3].payload);

        await store.deletePoints(collection, [points[3].id, unknown]);
        expect(await store.count(collection)).toBe(5);
        expect(await store.retrieve(collection, [points[3].id])).toEqual([]);
      });

      it("filters see a point's latest payload after it is replaced or deleted", async () => {
        const collection = name('filter-updates');
        await store.createCollection(collection, { size: 4, distance: 'Cosine' });
        const [point, other] = randomPoints(createRandom(15), 2, 4);
        const byStage = (stage: string): Filter => ({ must: [{ key: 'stage', match: { value: stage } }] });
        await store.upsert(collection, [
          { ...point, payload: { stage: 'draft' } },
          { ...other, payload: { stage: 'draft' } },
        ]);
        expect(await store.count(collection, byStage('draft'))).toBe(2);
        await store.upsert(collection, [{ ...point, payload: { stage: 'published' } }]);
        expect(await store.count(collection, byStage('draft'))).toBe(1);
        expect(await store.count(collection, byStage('published'))).toBe(1);
        await store.deletePoints(collection, [point.id]);
        expect(await store.count(collection, byStage('published'))).toBe(0);
        const hits = await store.query(collection, { vector: point.vector, limit: 5, filter: byStage('draft') });
        expect(ids(hits)).toEqual([other.id]);
      });

      it('scrolls through every point once, in pages', async () => {
        const collection = name('scroll');
        await store.createCollection(collection, { size: 4, distance: 'Cosine' });
        const points = randomPoints(createRandom(5), 23, 4);
        await store.upsert(collection, points);
        const seen: string[] = [];
        let offset: string | undefined;
        let pages = 0;
        do {
          const page = await store.scroll(collection, { limit: 10, offset });
          seen.push(...page.points.map((point) => point.id));
          offset = page.nextOffset;
          pages++;
        } while (offset !== undefined);
        expect(pages).toBe(3);
        expect(seen).toEqual(points.map((point) => point.id).sort());
      });
    });

    describe('query', () => {
      const dimension = 16;
      const random = createRandom(6);
      const points = randomPoints(random, 300, dimension);
      const queries = Array.from({ length: 5 }, () => randomVector(random, dimension));

      it.each<Distance>(['Cosine', 'Dot', 'Euclid'])('ranks like a brute-force %s computation', async (distance) => {
        const collection = name(`ordering-${distance.toLowerCase()}`);
        await store.createCollection(collection, { size: dimension, distance });
        await store.upsert(collection, points, { batchSize: 64 });
        for (const vector of queries) {
          const hits = await store.query(collection, { vector, limit: 10, exact: true });
          const expected = bruteForce(points, vector, distance, 10, () => true);
          expect(hits.map((hit) => hit.id)).toEqual(expected.map((hit) => hit.id));
          hits.forEach((hit, index) => expect(hit.score).toBeCloseTo(expected[index].score, 4));
        }
      });

      it('answers a batch of queries like the queries one by one', async () => {
        const collection = name('batch');
        await store.createCollection(collection, { size: dimension, distance: 'Cosine' });
        await store.upsert(collection, points);
        const requests = queries.map((vector) => ({ vector, limit: 3, exact: true }));
        const batch = await store.queryBatch(collection, requests);
        const single = await Promise.all(requests.map((request) => store.query(collection, request)));
        expect(batch.map(ids)).toEqual(single.map(ids));
        expect(batch).toHaveLength(queries.length);
      });

      it('returns vectors only when asked', async () => {
        const collection = name('with-vector');
        await store.createCollection(collection, { size: dimension, distance: 'Euclid' });
        await store.upsert(collection, points.slice(0, 10));
        const [withVector] = await store.query(collection, { vector: queries[0], limit: 1, withVector: true });
        expect(withVector.vector).toHaveLength(dimension);
        const [withoutPayload] = await store.query(collection, { vector: queries[0], limit: 1, withPayload: false });
        expect(withoutPayload.vector).toBeUndefined();
        expect(withoutPayload.payload).toEqual({});
      });
    });

    describe('filters', () => {
      const dimension = 8;
      const random = createRandom(7);
      const longSummary = 'A chunk summary long enough that an index might store it differently: '.repeat(3);
      const otherLongSummary = longSummary.replace('chunk', 'other');
      // 400 points; category 'rare' has exactly 10, so a top-10 filtered query must find all of them.
      const points = randomPoints(random, 400, dimension).map((point, index) => ({
        ...point,
        payload: {
          category: index % 40 === 0 ? 'rare' : ['news', 'blog', 'paper'][index % 3],
          rank: index,
          published: index % 2 === 0,
          tags: index % 5 === 0 ? ['red', 'green'] : ['blue'],
          nested: { level: index % 7 },
          summary: index % 4 === 0 ? longSummary : index % 4 === 1 ? otherLongSummary : `short-${index % 4}`,
        },
      }));
      const vector = randomVector(random, dimension);
      const collection = name('filters');
      const payloadOf = (id: string): Payload => points.find((point) => point.id === id)!.payload;

      beforeAll(async () => {
        await store.createCollection(collection, { size: dimension, distance: 'Cosine' });
        await store.upsert(collection, points, { batchSize: 100 });
      });

      const cases: { title: string; filter: Filter; predicate: (payload: Payload) => boolean }[] = [
        {
          title: 'match value (string) on a rare value',
          filter: { must: [{ key: 'category', match: { value: 'rare' } }] },
          predicate: (payload) => payload.category === 'rare',
        },
        {
          title: 'match value (integer)',
          filter: { must: [{ key: 'nested.level', match: { value: 3 } }] },
          predicate: (payload) => (payload.nested as { level: number }).level === 3,
        },
        {
          title: 'match value (boolean)',
          filter: { must: [{ key: 'published', match: { value: false } }] },
          predicate: (payload) => payload.published === false,
        },
        {
          title: 'match value against an array element',
          filter: { must: [{ key: 'tags', match: { value: 'green' } }] },
          predicate: (payload) => (payload.tags as string[]).includes('green'),
        },
        {
          title: 'match any (strings)',
          filter: { must: [{ key: 'category', match: { any: ['rare', 'paper'] } }] },
          predicate: (payload) => payload.category === 'rare' || payload.category === 'paper',
        },
        {
          title: 'match value on a long string',
          filter: { must: [{ key: 'summary', match: { value: longSummary } }] },
          predicate: (payload) => payload.summary === longSummary,
        },
        {
          title: 'match any mixing long and short strings',
          filter: { must: [{ key: 'summary', match: { any: [otherLongSummary, 'short-2'] } }] },
          predicate: (payload) => payload.summary === otherLongSummary || payload.summary === 'short-2',
        },
        {
          title: 'match any (integers)',
          filter: { must: [{ key: 'rank', match: { any: [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377] } }] },
          predicate: (payload) => [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377].includes(payload.rank as number),
        },
        {
          title: 'range',
          filter: { must: [{ key: 'rank', range: { gt: 100, lte: 120 } }] },
          predicate: (payload) => (payload.rank as number) > 100 && (payload.rank as number) <= 120,
        },
        {
          title: 'should',
          filter: {
            should: [
              { key: 'category', match: { value: 'rare' } },
              { key: 'rank', range: { lt: 5 } },
            ],
          },
          predicate: (payload) => payload.category === 'rare' || (payload.rank as number) < 5,
        },
        {
          title: 'must_not',
          filter: { must_not: [{ key: 'category', match: { any: ['news', 'blog', 'paper'] } }] },
          predicate: (payload) => payload.category === 'rare',
        },
        {
          title: 'must_not on a missing key keeps every point',
          filter: { must: [{ key: 'rank', range: { gte: 390 } }], must_not: [{ key: 'missing', match: { value: 1 } }] },
          predicate: (payload) => (payload.rank as number) >= 390,
        },
        {
          title: 'nested filter with has_id',
          filter: {
            must: [
              {
                should: [
                  { key: 'published', match: { value: true } },
                  { key: 'tags', match: { value: 'red' } },
                ],
              },
              { has_id: points.slice(0, 40).map((point) => point.id) },
            ],
          },
          predicate: (payload) =>
            (payload.rank as number) < 40 && (payload.published === true || (payload.tags as string[]).includes('red')),
        },
      ];

      it.each(cases)('$title: returns the top k of the matching points', async ({ filter, predicate }) => {
        const matching = points.filter((point) => predicate(point.payload));
        expect(matching.length).toBeGreaterThanOrEqual(10);
        const hits = await store.query(collection, { vector, limit: 10, filter, exact: true });
        expect(hits).toHaveLength(10);
        expect(hits.every((hit) => predicate(payloadOf(hit.id)))).toBe(true);
        const expected = bruteForce(points, vector, 'Cosine', 10, (point) => predicate(point.payload));
        expect(ids(hits)).toEqual(ids(expected));
        expect(await store.count(collection, filter)).toBe(matching.length);
      });

      it('matches by JSON type and never inside an object value', async () => {
        // `nested` is an object and `rank` an integer: neither a string nor a boolean equal to them matches.
        expect(await store.count(collection, { must: [{ key: 'nested', match: { value: 3 } }] })).toBe(0);
        expect(await store.count(collection, { must: [{ key: 'rank', match: { value: '7' } }] })).toBe(0);
        expect(await store.count(collection, { must: [{ key: 'published', match: { value: 1 } }] })).toBe(0);
        expect(await store.count(collection, { must: [{ key: 'missing', match: { value: 'x' } }] })).toBe(0);
        expect(await store.count(collection, { must: [{ key: 'rank', match: { value: 7 } }] })).toBe(1);
        expect(await store.count(collection, {})).toBe(points.length);
      });

      it.each<[string, unknown]>([
        ['a text match', { must: [{ key: 'category', match: { text: 'rare' } }] }],
        ['a geo condition', { must: [{ key: 'location', geo_radius: { center: { lat: 0, lon: 0 }, radius: 1 } }] }],
        ['is_empty', { must: [{ is_empty: { key: 'tags' } }] }],
        ['min_should', { min_should: { conditions: [], min_count: 1 } }],
        ['match except', { must_not: [{ key: 'category', match: { except: ['rare'] } }] }],
        ['array projection keys', { must: [{ key: 'items[].name', match: { value: 'x' } }] }],
      ])('rejects %s with UnsupportedFilterError instead of ignoring it', async (_title, filter) => {
        await expect(store.query(collection, { vector, limit: 10, filter: filter as Filter })).rejects.toThrow(
          UnsupportedFilterError,
        );
        await expect(store.count(collection, filter as Filter)).rejects.toThrow(UnsupportedFilterError);
      });
    });

    describe('hybrid retrieval', () => {
      it('fuses BM25 over a payload text field with the vector ranking, honouring the filter', async () => {
        const collection = name('hybrid');
        const dimension = 8;
        const random = createRandom(8);
        const words = ['river', 'mountain', 'forest', 'desert', 'ocean', 'valley', 'glacier', 'meadow'];
        // Fewer points than the fusion's candidate depth (50), so every point has a vector rank.
        const points = randomPoints(random, 40, dimension).map((point, index) => ({
          ...point,
          payload: {
            text: `${words[index % 8]} ${words[(index * 3) % 8]} report ${index}`,
            language: index % 2 === 0 ? 'en' : 'de',
          },
        }));
        // One document alone mentions the query term; a vector-only query would not rank it first.
        points[17].payload.text = 'the quetzal nests in cloud forests';
        await store.createCollection(collection, { size: dimension, distance: 'Cosine' });
        await store.upsert(collection, points);
        const vector = randomVector(random, dimension);

        const hits = await store.query(collection, { vector, limit: 5, hybrid: { field: 'text', text: 'Quetzal!' } });
        expect(hits).toHaveLength(5);
        expect(hits[0].id).toBe(points[17].id);
        expect(hits[0].payload.text).toBe('the quetzal nests in cloud forests');
        // Reciprocal rank fusion with k = 60: first in BM25 contributes 1/61, plus its vector rank if any.
        expect(hits[0].score).toBeGreaterThanOrEqual(1 / 61);

        const filtered = await store.query(collection, {
          vector,
          limit: 5,
          filter: { must: [{ key: 'language', match: { value: 'en' } }] },
          hybrid: { field: 'text', text: 'quetzal' },
        });
        expect(filtered).toHaveLength(5);
        expect(filtered.every((hit) => hit.payload.language === 'en')).toBe(true);
        expect(ids(filtered)).not.toContain(points[17].id);

        // The index follows the collection: new text is found after an upsert.
        const newcomer = {
          id: uuidFrom(random),
          vector: randomVector(random, dimension),
          payload: { text: 'axolotl' },
        };
        await store.upsert(collection, [newcomer]);
        const [first] = await store.query(collection, { vector, limit: 3, hybrid: { field: 'text', text: 'axolotl' } });
        expect(first.id).toBe(newcomer.id);
      });
    });

    describe('aliases', () => {
      it('switches an alias atomically: queries through it see the old or the new collection, never nothing', async () => {
        const blue = name('blue');
        const green = name('green');
        const alias = name('production');
        const random = createRandom(9);
        const bluePoints = randomPoints(random, 30, 4);
        const greenPoints = randomPoints(random, 30, 4);
        await store.createCollection(blue, { size: 4, distance: 'Cosine' });
        await store.createCollection(green, { size: 4, distance: 'Cosine' });
        await store.upsert(blue, bluePoints);
        await store.upsert(green, greenPoints);
        await store.createAlias(alias, blue);
        await store.createAlias(alias, blue);
        await expect(store.createAlias(alias, green)).rejects.toThrow(VectorAliasConflictError);

        const blueIds = new Set(ids(bluePoints));
        const greenIds = new Set(ids(greenPoints));
        const vector = randomVector(random, 4);
        const observed: string[] = [];
        let switched = false;
        const reader = (async () => {
          // Keep reading until the switch is done, then once more.
          for (let reads = 0; reads < 200; reads++) {
            const finished = switched;
            const hits = await store.query(alias, { vector, limit: 5 });
            expect(hits).toHaveLength(5);
            const side = hits.every((hit) => blueIds.has(hit.id))
              ? 'blue'
              : hits.every((hit) => greenIds.has(hit.id))
                ? 'green'
                : 'mixed';
            observed.push(side);
            if (finished) break;
          }
        })();
        for (let round = 0; round < 3; round++) {
          await store.switchAlias(alias, green);
          await store.switchAlias(alias, blue);
        }
        await store.switchAlias(alias, green);
        switched = true;
        await reader;

        expect(observed).not.toContain('mixed');
        expect(observed[observed.length - 1]).toBe('green');
        expect(await store.listAliases()).toContainEqual({ alias, collection: green });
        expect((await store.getCollection(alias)).name).toBe(green);
        expect(await store.count(alias)).toBe(30);

        await expect(store.createAlias(blue, green)).rejects.toThrow(VectorAliasConflictError);
        expect(await store.deleteAlias(alias)).toBe(true);
        expect(await store.deleteAlias(alias)).toBe(false);
        await expect(store.query(alias, { vector, limit: 1 })).rejects.toThrow(CollectionNotFoundError);
      });
    });

    describe('snapshots', () => {
      it('restores a collection to its points and content version at snapshot time', async () => {
        const collection = name('snapshot');
        const random = createRandom(10);
        const points = randomPoints(random, 50, 6);
        await store.createCollection(collection, { size: 6, distance: 'Dot' });
        await store.upsert(collection, points);
        const versionAtSnapshot = await store.contentVersion(collection);
        const snapshotPath = path.join(scratchDirectory, `${adapter}-snapshot`);
        const description = await store.createSnapshot(collection, snapshotPath);
        expect(description).toMatchObject({ collection, pointsCount: 50, contentVersion: versionAtSnapshot });
        expect(fs.statSync(snapshotPath).size).toBeGreaterThan(0);

        await store.deletePoints(collection, ids(points.slice(0, 10)));
        await store.upsert(collection, [{ ...points[20], payload: { changed: true } }]);
        expect(await store.contentVersion(collection)).not.toBe(versionAtSnapshot);

        await store.restoreSnapshot(snapshotPath, collection);
        expect(await store.count(collection)).toBe(50);
        expect(await store.contentVersion(collection)).toBe(versionAtSnapshot);
        const [restored] = await store.retrieve(collection, [points[20].id]);
        expect(restored.payload).toEqual(points[20].payload);

        const copy = name('snapshot-copy');
        await store.restoreSnapshot(snapshotPath, copy);
        expect(await store.getCollection(copy)).toEqual({ name: copy, size: 6, distance: 'Dot', pointsCount: 50 });
        const vector = randomVector(random, 6);
        expect(ids(await store.query(copy, { vector, limit: 5, exact: true }))).toEqual(
          ids(await store.query(collection, { vector, limit: 5, exact: true })),
        );
      });
    });

    describe('content version', () => {
      it('changes when points change and only then', async () => {
        const collection = name('content-version');
        const random = createRandom(11);
        const points = randomPoints(random, 12, 4);
        await store.createCollection(collection, { size: 4, distance: 'Cosine' });
        const empty = await store.contentVersion(collection);
        await store.upsert(collection, points);
        const filled = await store.contentVersion(collection);
        expect(filled).not.toBe(empty);

        await store.query(collection, { vector: randomVector(random, 4), limit: 3 });
        await store.retrieve(collection, [points[0].id]);
        await store.count(collection, { must: [{ key: 'index', range: { gte: 3 } }] });
        await store.scroll(collection, { limit: 5 });
        expect(await store.contentVersion(collection)).toBe(filled);

        await store.upsert(collection, points.slice(0, 4));
        expect(await store.contentVersion(collection)).toBe(filled);

        await store.upsert(collection, [{ ...points[0], payload: { index: 0, edited: true } }]);
        const edited = await store.contentVersion(collection);
        expect(edited).not.toBe(filled);

        await store.deletePoints(collection, [points[1].id]);
        const afterDelete = await store.contentVersion(collection);
        expect(afterDelete).not.toBe(edited);

        // Same points in another collection with the same params: same version, so caches can be shared.
        const twin = name('content-version-twin');
        await store.createCollection(twin, { size: 4, distance: 'Cosine' });
        await store.upsert(twin, [{ ...points[0], payload: { index: 0, edited: true } }, ...points.slice(2)]);
        expect(await store.contentVersion(twin)).toBe(afterDelete);
      });
    });

    describe('bad input', () => {
      const collection = name('bad-input');
      beforeAll(async () => {
        await store.createCollection(collection, { size: 3, distance: 'Cosine' });
      });

      it('rejects a point id that is not a UUID', async () => {
        await expect(store.upsert(collection, [{ id: 'chunk-1', vector: [1, 2, 3] }])).rejects.toThrow(
          InvalidPointIdError,
        );
        await expect(store.retrieve(collection, ['42'])).rejects.toThrow(/'?"42"'? is not a UUID/);
      });

      it('rejects NaN and infinite vector elements on upsert and query', async () => {
        const id = uuidFrom(createRandom(12));
        await expect(store.upsert(collection, [{ id, vector: [1, Number.NaN, 3] }])).rejects.toThrow(
          InvalidVectorError,
        );
        await expect(store.query(collection, { vector: [1, 2, Infinity], limit: 1 })).rejects.toThrow(
          /element 2 is Infinity/,
        );
        expect(await store.count(collection)).toBe(0);
      });

      it('rejects an empty collection name', async () => {
        await expect(store.createCollection('', { size: 3, distance: 'Cosine' })).rejects.toThrow(
          InvalidCollectionNameError,
        );
        await expect(store.query('', { vector: [1, 2, 3], limit: 1 })).rejects.toThrow(InvalidCollectionNameError);
      });

      it('names an unknown collection in a typed, non-retryable error', async () => {
        const unknown = name('does-not-exist');
        const attempts: Promise<unknown>[] = [
          store.query(unknown, { vector: [1, 2, 3], limit: 1 }),
          store.upsert(unknown, [{ id: uuidFrom(createRandom(13)), vector: [1, 2, 3] }]),
          store.count(unknown),
          store.getCollection(unknown),
          store.contentVersion(unknown),
          store.createSnapshot(unknown, path.join(scratchDirectory, 'never')),
        ];
        for (const attempt of attempts) {
          const error = await attempt.then(
            () => undefined,
            (rejection: unknown) => rejection,
          );
          expect(error).toBeInstanceOf(CollectionNotFoundError);
          expect((error as CollectionNotFoundError).message).toContain(`'${unknown}'`);
          expect((error as CollectionNotFoundError).retryable).toBe(false);
        }
      });
    });
  });
}

/** The project's one seeded generator, so every run (and every adapter) sees the same data. */
export const createRandom = createSeededRandom;

export function uuidFrom(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((Math.floor(random() * 4) & 0x3) | 0x8).toString(16);
  const text = hex.join('');
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20)}`;
}

export function randomVector(random: () => number, dimension: number): number[] {
  // Values rounded to float32 so the brute force sees exactly what the store holds.
  return Array.from(Float32Array.from({ length: dimension }, () => random() * 2 - 1));
}

export function randomPoints(
  random: () => number,
  count: number,
  dimension: number,
): (PointStruct & { payload: Payload })[] {
  return Array.from({ length: count }, (_, index) => ({
    id: uuidFrom(random),
    vector: randomVector(random, dimension),
    payload: { index },
  }));
}

function ids(points: readonly { id: string }[]): string[] {
  return points.map((point) => point.id);
}

/** The reference ranking: Qdrant's scores computed in double precision over every matching point. */
export function bruteForce(
  points: readonly PointStruct[],
  query: readonly number[],
  distance: Distance,
  limit: number,
  keep: (point: PointStruct & { payload: Payload }) => boolean,
): ScoredPoint[] {
  const norm = (vector: ArrayLike<number>): number => Math.sqrt(dot(vector, vector));
  const scored = points
    .filter((point) => keep(point as PointStruct & { payload: Payload }))
    .map((point) => {
      const vector = point.vector;
      let score: number;
      if (distance === 'Dot') score = dot(vector, query);
      else if (distance === 'Cosine') score = dot(vector, query) / (norm(vector) * norm(query));
      else score = Math.sqrt(Array.from(vector).reduce((sum, value, index) => sum + (value - query[index]) ** 2, 0));
      return { id: point.id, score, payload: point.payload ?? {} };
    });
  const direction = distance === 'Euclid' ? 1 : -1;
  return scored.sort((left, right) => direction * (left.score - right.score)).slice(0, limit);
}

function dot(left: ArrayLike<number>, right: ArrayLike<number>): number {
  let sum = 0;
  for (let index = 0; index < left.length; index++) sum += left[index] * right[index];
  return sum;
}
