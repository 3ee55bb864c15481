import { canonicalJson, sha256Hex } from '../lineage';
import type { PointStruct, VectorStore } from '../vectors';
import { ensureArtifactRef, type AppCatalogue } from './app-catalogue';
import {
  chunkDocument,
  defaultChunking,
  passageEmbeddingText,
  passagePointId,
  passageTextField,
  readCorpus,
  validateChunking,
  validateDocuments,
  type CorpusDocument,
  type Passage,
} from './corpus';
import { InvalidCorpusError } from './errors';
import type { RagModelSessions } from './model-sessions';

/**
 * Ingest: a corpus chunked into passages, embedded and written to a content-addressed collection, then the alias
 * RagModels read switched to it (blue/green: readers never see a half-filled collection).
 */

export interface IngestInput {
  /** The documents, or `corpusPath` to read them from. */
  documents?: readonly CorpusDocument[];
  /** A JSON-lines corpus or a folder (see readCorpus). */
  corpusPath?: string;
  /** Base name of the collection: the collection is `<collectionName>-<content digest>`. Default: the alias. */
  collectionName?: string;
  /** The alias readers (RagModels) use; switched to the new collection once it is complete. */
  alias: string;
  embeddingModelRef: string;
  /** Words per passage. Default 120. */
  chunkWords?: number;
  onProgress?: (progress: { embeddedPassages: number; totalPassages: number }) => void;
}

export interface IngestResult {
  collection: string;
  alias: string;
  points: number;
  documents: number;
  /** The vector store's content version of the collection (cache keys derive from it). */
  contentVersion: string;
  /** False when this corpus and model were ingested before: nothing was embedded. */
  created: boolean;
  /** The collection the alias pointed at before, when it moved. */
  previousCollection: string | null;
}

/** Passages embedded and written per step of ingest (bounded memory, visible progress). */
const ingestBatchSize = 64;

export class CorpusIngest {
  constructor(
    private readonly catalogue: AppCatalogue,
    private readonly vectors: VectorStore,
    private readonly sessions: RagModelSessions,
  ) {}

  async ingest(input: IngestInput): Promise<IngestResult> {
    if ((input.documents === undefined) === (input.corpusPath === undefined)) {
      throw new InvalidCorpusError('Give ingest exactly one of documents or corpusPath.');
    }
    const documents = input.documents ?? readCorpus(input.corpusPath!);
    if (input.documents !== undefined) validateDocuments(input.documents, 'The documents given to ingest');
    const chunking = { ...defaultChunking, chunkWords: input.chunkWords ?? defaultChunking.chunkWords };
    chunking.overlapWords = Math.min(chunking.overlapWords, Math.floor(chunking.chunkWords / 4));
    validateChunking(chunking);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(input.alias ?? '')) {
      throw new InvalidCorpusError(
        `The collection alias ${JSON.stringify(input.alias)} is invalid; use letters, digits, ".", "-" and "_", starting with a letter or digit.`,
      );
    }
    ensureArtifactRef(input.embeddingModelRef, 'The embedding model');
    const embeddingArtifact = await this.catalogue.requireArtifact(input.embeddingModelRef, 'embedding model');
    const passages: Passage[] = documents.flatMap((document) =>
      chunkDocument({ ...document, title: document.title ?? document.id }, chunking),
    );
    // The collection's name is a digest of everything its points derive from: same corpus and model, same name.
    const contentDigest = sha256Hex(
      canonicalJson({
        format: 'weft-rag-collection/1',
        embeddingModel: embeddingArtifact.digest,
        chunking,
        passages: passages.map((passage) => [passage.documentId, passage.chunkIndex, passage.title, passage.text]),
      }),
    );
    const collection = `${input.collectionName ?? input.alias}-${contentDigest.slice(0, 16)}`;
    const complete =
      (await this.vectors.collectionExists(collection)) && (await this.vectors.count(collection)) === passages.length;
    if (!complete) {
      const embedder = await this.sessions.embeddingModel(embeddingArtifact.ref, this.sessions.placementFor('auto'));
      await this.vectors.createCollection(collection, { size: embedder.dimension, distance: 'Cosine' });
      for (let start = 0; start < passages.length; start += ingestBatchSize) {
        const batch = passages.slice(start, start + ingestBatchSize);
        const vectors = await embedder.embed(batch.map(passageEmbeddingText));
        const points: PointStruct[] = batch.map((passage, index) => ({
          id: passagePointId(passage),
          vector: vectors[index],
          payload: {
            document_id: passage.documentId,
            title: passage.title,
            [passageTextField]: passage.text,
            chunk_index: passage.chunkIndex,
          },
        }));
        await this.vectors.upsert(collection, points);
        input.onProgress?.({ embeddedPassages: start + batch.length, totalPassages: passages.length });
      }
    }
    const previousCollection = await this.aliasTarget(input.alias);
    // Readers see the old collection or the complete new one, never a half-filled one.
    if (previousCollection !== collection) await this.vectors.switchAlias(input.alias, collection);
    return {
      collection,
      alias: input.alias,
      points: passages.length,
      documents: documents.length,
      contentVersion: await this.vectors.contentVersion(collection),
      created: !complete,
      previousCollection: previousCollection === collection ? null : previousCollection,
    };
  }

  private async aliasTarget(alias: string): Promise<string | null> {
    const aliases = await this.vectors.listAliases();
    return aliases.find((entry) => entry.alias === alias)?.collection ?? null;
  }
}
