import path from 'node:path';
import { ConfigError, loadConfig } from '../config/config';
import { QdrantVectorStore } from './qdrant-vector-store';
import { SqliteVectorStore } from './sqlite-vector-store';
import type { VectorStore } from './vector-store';

export * from './vector-store';
export * from './errors';
export { QdrantVectorStore, type QdrantVectorStoreOptions } from './qdrant-vector-store';
export { SqliteVectorStore, type SqliteVectorStoreOptions } from './sqlite-vector-store';
export { Bm25Index, reciprocalRankFusion, reciprocalRankFusionK, tokenize } from './hybrid-retrieval';

export interface OpenVectorStoreOptions {
  /** A Qdrant URL (`http://host:6333`); when set, the Qdrant adapter is used. Default: WEFT_VECTOR_URL. */
  url?: string;
  /** Qdrant API key. Default: WEFT_VECTOR_API_KEY when the URL also comes from the environment. */
  apiKey?: string;
  /** The sqlite-vec file when no URL is given. Default: `$WEFT_HOME/vectors.db`. */
  path?: string;
}

/**
 * Opens the configured vector store: Qdrant when a URL is given (or WEFT_VECTOR_URL is set and no path
 * is given), otherwise the embedded sqlite-vec store.
 */
export async function openVectorStore(options: OpenVectorStoreOptions = {}): Promise<VectorStore> {
  if (options.url !== undefined)
    return new QdrantVectorStore({ url: checkedQdrantUrl(options.url), apiKey: options.apiKey });
  if (options.path !== undefined) return SqliteVectorStore.open(options.path);
  const config = loadConfig();
  if (config.vectorUrl !== undefined) {
    return new QdrantVectorStore({
      url: checkedQdrantUrl(config.vectorUrl),
      apiKey: options.apiKey ?? config.vectorApiKey,
    });
  }
  return SqliteVectorStore.open(path.join(config.home, 'vectors.db'));
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
