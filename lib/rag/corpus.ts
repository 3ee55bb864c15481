import fs from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../lineage';
import { InvalidCorpusError } from './errors';
import { readJsonObjectLines, readUtf8Text } from '../common/data-files';

/** One document of a corpus, as in data/climate/corpus.jsonl. */
export interface CorpusDocument {
  id: string;
  title: string;
  text: string;
}

/** A passage of a document: what is embedded, stored as a point, retrieved and put in the prompt. */
export interface Passage {
  documentId: string;
  title: string;
  text: string;
  /** Position of the passage within its document, from 0. */
  chunkIndex: number;
}

export interface ChunkingSettings {
  /** Words per passage. Default 120: a demo document (113–154 words) is one or two passages. */
  chunkWords: number;
  /** Words a passage repeats from the one before, so a sentence cut at a boundary is whole in one of them. */
  overlapWords: number;
}

export const defaultChunking: ChunkingSettings = { chunkWords: 120, overlapWords: 30 };

/**
 * Splits a document into passages of `chunkWords` words overlapping by `overlapWords`. A last window that would
 * add fewer new words than the overlap is folded into the passage before it, so no passage is a short tail.
 */
export function chunkDocument(document: CorpusDocument, settings: ChunkingSettings = defaultChunking): Passage[] {
  const words = document.text.split(/\s+/).filter((word) => word.length > 0);
  const stride = settings.chunkWords - settings.overlapWords;
  const passages: Passage[] = [];
  let start = 0;
  for (;;) {
    let end = Math.min(words.length, start + settings.chunkWords);
    if (words.length - end < settings.overlapWords) end = words.length;
    passages.push({
      documentId: document.id,
      title: document.title,
      text: words.slice(start, end).join(' '),
      chunkIndex: passages.length,
    });
    if (end >= words.length) return passages;
    start += stride;
  }
}

export function validateChunking(settings: ChunkingSettings): void {
  if (!Number.isInteger(settings.chunkWords) || settings.chunkWords < 16 || settings.chunkWords > 2000) {
    throw new InvalidCorpusError(`chunkWords must be an integer from 16 to 2000, got ${settings.chunkWords}.`);
  }
  if (
    !Number.isInteger(settings.overlapWords) ||
    settings.overlapWords < 0 ||
    settings.overlapWords >= settings.chunkWords / 2
  ) {
    throw new InvalidCorpusError(
      `overlapWords must be an integer from 0 to less than half of chunkWords, got ${settings.overlapWords}.`,
    );
  }
}

/** Checks ids, titles and texts: a corpus with duplicate or empty documents would silently lose passages. */
export function validateDocuments(documents: readonly CorpusDocument[], source: string): void {
  if (documents.length === 0) {
    throw new InvalidCorpusError(`${source} has no documents; give JSON lines {"id", "title", "text"} or text files.`);
  }
  const seen = new Set<string>();
  documents.forEach((document, index) => {
    const where = `${source}, document ${index + 1}`;
    if (typeof document.id !== 'string' || document.id.trim().length === 0) {
      throw new InvalidCorpusError(`${where} has no "id"; every document needs a unique string id.`);
    }
    if (seen.has(document.id)) {
      throw new InvalidCorpusError(`${where} repeats the id "${document.id}"; document ids must be unique.`);
    }
    seen.add(document.id);
    if (typeof document.text !== 'string' || document.text.trim().length === 0) {
      throw new InvalidCorpusError(`${where} ("${document.id}") has no "text"; remove it or give it content.`);
    }
    if (document.title !== undefined && typeof document.title !== 'string') {
      throw new InvalidCorpusError(`${where} ("${document.id}") has a "title" that is not a string.`);
    }
  });
}

function readJsonLines(filePath: string): CorpusDocument[] {
  return readJsonObjectLines(filePath, '{"id", "title", "text"}').map(({ value }) => {
    const record = value as Partial<CorpusDocument>;
    return {
      id: record.id as string,
      title: typeof record.title === 'string' ? record.title : String(record.id ?? ''),
      text: record.text as string,
    };
  });
}

/** A text or Markdown file as one document: its path is the id, its first heading (or file name) the title. */
function readTextFile(filePath: string, root: string): CorpusDocument {
  // Strict UTF-8: random bytes in a .txt are refused, not ingested as a document of replacement characters.
  const text = readUtf8Text(filePath, 'a corpus document');
  const heading = /^#\s+(.+)$/m.exec(text);
  return {
    id: path.relative(root, filePath).split(path.sep).join('/'),
    title: heading ? heading[1].trim() : path.basename(filePath, path.extname(filePath)),
    text,
  };
}

/**
 * Reads a corpus: a JSON-lines file of {id, title, text}, or a folder of such files and/or .md/.txt files
 * (one document each), read in name order so the same folder always gives the same corpus.
 */
export function readCorpus(corpusPath: string): CorpusDocument[] {
  const resolved = path.resolve(corpusPath);
  let stats: fs.Stats;
  try {
    stats = fs.statSync(resolved);
  } catch {
    throw new InvalidCorpusError(
      `The corpus ${resolved} does not exist; pass a corpus.jsonl file or a folder of .jsonl, .md or .txt files.`,
    );
  }
  let documents: CorpusDocument[];
  if (stats.isFile()) {
    if (!/\.jsonl?$/.test(resolved)) {
      documents = [readTextFile(resolved, path.dirname(resolved))];
    } else documents = readJsonLines(resolved);
  } else {
    const files = (fs.readdirSync(resolved, { recursive: true }) as string[])
      .map((name) => path.join(resolved, name))
      .filter((file) => /\.(jsonl|md|txt)$/.test(file) && fs.statSync(file).isFile())
      .sort();
    // A folder holding corpus.jsonl next to QA sets (data/climate) is the corpus file alone.
    const corpusFile = files.find((file) => path.basename(file) === 'corpus.jsonl');
    const chosen = corpusFile ? [corpusFile] : files;
    documents = chosen.flatMap((file) =>
      file.endsWith('.jsonl') ? readJsonLines(file) : [readTextFile(file, resolved)],
    );
  }
  validateDocuments(documents, resolved);
  return documents;
}

/** A UUID (version-5 layout) from a digest, so the same passage always gets the same point id. */
export function uuidFromDigest(hex: string): string {
  const bytes = Buffer.from(hex.slice(0, 32), 'hex');
  bytes[6] = (bytes[6] & 0x0f) | 0x50;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const text = bytes.toString('hex');
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20, 32)}`;
}

export function passagePointId(passage: Passage): string {
  const digest = sha256Hex(JSON.stringify([passage.documentId, passage.chunkIndex, passage.text]));
  return uuidFromDigest(digest);
}

/** The text that is embedded for a passage: its document title gives short passages their topic. */
export function passageEmbeddingText(passage: Passage): string {
  return passage.title ? `${passage.title}\n${passage.text}` : passage.text;
}

/** The payload field of a vector point that holds its passage text: ingest writes it, retrieval reads it. */
export const passageTextField = 'text';
