import { ConfigError } from '../config/config';
import { QdrantVectorStore } from './qdrant-vector-store';
import { SqliteVectorStore } from './sqlite-vector-store';
import type { VectorStore } from './vector-store';

export * from './vector-store';
export * from './errors';
export { QdrantVectorStore, type QdrantVectorStoreOptions } from './qdrant-vector-store';
export { SqliteVectorStore, type SqliteVectorStoreOptions } from './sqlite-vector-store';
export { Bm25Index, reciprocalRankFusion, reciprocalRankFusionK, tokenize } from './hybrid-retrieval';

export interface OpenVectorStoreOptions {
  /** A Qdrant URL (`http://host:6333`); when set, the Qdrant adapter is used (weft passes WEFT_VECTOR_URL). */
  url?: string;
  /** Qdrant API key (weft passes WEFT_VECTOR_API_KEY). */
  apiKey?: string;
  /** The sqlite-vec file when no URL is given (weft passes `$WEFT_HOME/vectors.db`). */
  path?: string;
}

/** Opens a vector store: Qdrant when a URL is given, otherwise the embedded sqlite-vec store at `path`. */
export async function openVectorStore(options: OpenVectorStoreOptions): Promise<VectorStore> {
  if (options.url !== undefined)
    return new QdrantVectorStore({ url: checkedQdrantUrl(options.url), apiKey: options.apiKey });
  if (options.path !== undefined) return SqliteVectorStore.open(options.path);
  throw new ConfigError('No vector store to open: pass a Qdrant url or a sqlite-vec path.');
}

function checkedQdrantUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new ConfigError(`Invalid Qdrant URL ${JSON.stringify(url)}: expected http(s)://host:6333.`);
  }
  return url;
}
