import type { Filter, PointRecord, QueryRequest, ScoredPoint, VectorStore } from './vector-store';

/**
 * Hybrid retrieval over any VectorStore: BM25 over one payload text field, fused with the vector ranking
 * by reciprocal rank fusion. Written once against the port so both adapters rank identically.
 */

/** Lowercased runs of letters and digits (any script); punctuation separates tokens. */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

export interface RankedId {
  id: string;
  score: number;
}

/**
 * Okapi BM25 with the usual k1 = 1.2, b = 0.75 and the non-negative idf variant. Postings are parallel
 * number arrays rather than maps, so a collection of chunk texts costs a few bytes per (term, document).
 */
export class Bm25Index {
  private readonly postings = new Map<string, { documents: number[]; frequencies: number[] }>();
  private readonly ids: string[] = [];
  private readonly lengths: number[] = [];
  private averageLength = 0;

  constructor(
    private readonly k1 = 1.2,
    private readonly b = 0.75,
  ) {}

  static build(documents: Iterable<{ id: string; text: string }>): Bm25Index {
    const index = new Bm25Index();
    for (const document of documents) index.add(document.id, document.text);
    return index;
  }

  get documentCount(): number {
    return this.ids.length;
  }

  add(id: string, text: string): void {
    const documentNumber = this.ids.length;
    const tokens = tokenize(text);
    this.ids.push(id);
    this.lengths.push(tokens.length);
    this.averageLength += (tokens.length - this.averageLength) / this.ids.length;
    const counts = new Map<string, number>();
    for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
    for (const [term, frequency] of counts) {
      let posting = this.postings.get(term);
      if (posting === undefined) {
        posting = { documents: [], frequencies: [] };
        this.postings.set(term, posting);
      }
      posting.documents.push(documentNumber);
      posting.frequencies.push(frequency);
    }
  }

  /** Every document containing a query term, best first (ties by id, so results are deterministic). */
  search(query: string): RankedId[] {
    const documentCount = this.ids.length;
    const scores = new Float64Array(documentCount);
    const touched: number[] = [];
    for (const term of new Set(tokenize(query))) {
      const posting = this.postings.get(term);
      if (posting === undefined) continue;
      const frequencyOfTerm = posting.documents.length;
      const inverseDocumentFrequency = Math.log(1 + (documentCount - frequencyOfTerm + 0.5) / (frequencyOfTerm + 0.5));
      for (let entry = 0; entry < frequencyOfTerm; entry++) {
        const documentNumber = posting.documents[entry];
        const termFrequency = posting.frequencies[entry];
        const lengthRatio = this.averageLength === 0 ? 1 : this.lengths[documentNumber] / this.averageLength;
        if (scores[documentNumber] === 0) touched.push(documentNumber);
        scores[documentNumber] +=
          (inverseDocumentFrequency * termFrequency * (this.k1 + 1)) /
          (termFrequency + this.k1 * (1 - this.b + this.b * lengthRatio));
      }
    }
    return touched
      .map((documentNumber) => ({ id: this.ids[documentNumber], score: scores[documentNumber] }))
      .sort((left, right) => right.score - left.score || compareIds(left.id, right.id));
  }
}

/** The constant from Cormack et al. (2009); it damps the weight of the very first ranks. */
export const reciprocalRankFusionK = 60;

/** Sum over rankings of 1 / (k + rank), rank counted from 1; best first, ties by id. */
export function reciprocalRankFusion(rankings: readonly (readonly string[])[], k = reciprocalRankFusionK): RankedId[] {
  const fused = new Map<string, number>();
  for (const ranking of rankings) {
    ranking.forEach((id, position) => fused.set(id, (fused.get(id) ?? 0) + 1 / (k + position + 1)));
  }
  return [...fused]
    .map(([id, score]) => ({ id, score }))
    .sort((left, right) => right.score - left.score || compareIds(left.id, right.id));
}

function compareIds(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

/** How many candidates each ranking contributes before fusion. */
function candidateDepth(limit: number): number {
  return Math.max(limit * 4, 50);
}

const scrollPageSize = 512;

/**
 * Keeps one BM25 index per (collection, field), rebuilt when the collection's content version changes —
 * exact, and cheap on sqlite-vec where the version is stored; on Qdrant the version costs a scan.
 */
export class HybridRetriever {
  private readonly indexes = new Map<string, { contentVersion: string; index: Bm25Index }>();

  async query(store: VectorStore, collection: string, request: QueryRequest): Promise<ScoredPoint[]> {
    const hybrid = request.hybrid;
    if (hybrid === undefined) throw new Error('HybridRetriever.query needs request.hybrid');
    const depth = candidateDepth(request.limit);
    const withPayload = request.withPayload ?? true;
    const withVector = request.withVector ?? false;
    const vectorHits = await store.query(collection, { ...request, hybrid: undefined, limit: depth });
    const index = await this.indexFor(store, collection, hybrid.field);
    const textIds = await keepMatching(store, collection, index.search(hybrid.text), request.filter, depth);
    const fused = reciprocalRankFusion([vectorHits.map((hit) => hit.id), textIds]).slice(0, request.limit);

    const known = new Map<string, PointRecord>(vectorHits.map((hit) => [hit.id, hit]));
    const missing = fused.filter((entry) => !known.has(entry.id)).map((entry) => entry.id);
    if (missing.length > 0 && (withPayload || withVector)) {
      for (const record of await store.retrieve(collection, missing, { withPayload, withVector })) {
        known.set(record.id, record);
      }
    }
    return fused.map(({ id, score }) => {
      const record = known.get(id);
      const hit: ScoredPoint = { id, score, payload: withPayload ? (record?.payload ?? {}) : {} };
      if (withVector && record?.vector !== undefined) hit.vector = record.vector;
      return hit;
    });
  }

  private async indexFor(store: VectorStore, collection: string, field: string): Promise<Bm25Index> {
    const resolved = (await store.getCollection(collection)).name;
    const key = `${resolved}\0${field}`;
    const contentVersion = await store.contentVersion(resolved);
    const cached = this.indexes.get(key);
    if (cached !== undefined && cached.contentVersion === contentVersion) return cached.index;
    const index = new Bm25Index();
    let offset: string | undefined;
    do {
      const page = await store.scroll(resolved, { limit: scrollPageSize, offset, withPayload: true });
      for (const point of page.points) {
        const text = readField(point.payload, field);
        if (typeof text === 'string') index.add(point.id, text);
      }
      offset = page.nextOffset;
    } while (offset !== undefined);
    this.indexes.set(key, { contentVersion, index });
    return index;
  }
}

function readField(payload: PointRecord['payload'], field: string): unknown {
  let value: unknown = payload;
  for (const segment of field.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** Walks the BM25 ranking in order and keeps the first `depth` ids that satisfy the filter. */
async function keepMatching(
  store: VectorStore,
  collection: string,
  ranking: readonly RankedId[],
  filter: Filter | undefined,
  depth: number,
): Promise<string[]> {
  if (filter === undefined) return ranking.slice(0, depth).map((entry) => entry.id);
  const kept: string[] = [];
  for (let start = 0; start < ranking.length && kept.length < depth; start += scrollPageSize) {
    const chunk = ranking.slice(start, start + scrollPageSize).map((entry) => entry.id);
    const page = await store.scroll(collection, {
      filter: { must: [filter, { has_id: chunk }] },
      limit: chunk.length,
      withPayload: false,
    });
    const matching = new Set(page.points.map((point) => point.id));
    for (const id of chunk) if (matching.has(id) && kept.length < depth) kept.push(id);
  }
  return kept;
}
