import { CorruptModelError } from '../errors';
import { type ComponentConfig, readBoolean, readOptionalString, unsupported } from './tokenizer-json';

/** Turns one pre-tokenized word into vocabulary ids. */
export interface TokenizerModel {
  tokenize(word: string): number[];
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  readonly vocabularySize: number;
}

const supportedModels = ['BPE', 'WordPiece'];
/** Words are repeated constantly in a corpus; caching their merges is most of BPE's speed. */
const wordCacheLimit = 100_000;

function readVocabulary(config: ComponentConfig, source: string): Map<string, number> {
  const vocabulary = config.vocab;
  if (!vocabulary || typeof vocabulary !== 'object' || Array.isArray(vocabulary)) {
    throw new CorruptModelError(source, `the ${config.type} model has no "vocab" object`);
  }
  return new Map(Object.entries(vocabulary as Record<string, number>));
}

function invert(vocabulary: Map<string, number>): string[] {
  const tokens: string[] = [];
  for (const [token, id] of vocabulary) tokens[id] = token;
  return tokens;
}

/** Byte-pair encoding with ranked merges, byte fallback and sub-word affixes, as the tokenizers crate applies it. */
export class BytePairEncodingModel implements TokenizerModel {
  private readonly tokens: string[];
  /** (left id, right id) → merge rank and merged id, keyed by left * vocabularySize + right. */
  private readonly merges = new Map<number, { rank: number; mergedId: number }>();
  private readonly cache = new Map<string, number[]>();
  private readonly unknownToken: string | undefined;
  private readonly continuingSubwordPrefix: string | undefined;
  private readonly endOfWordSuffix: string | undefined;
  private readonly fuseUnknown: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  readonly vocabularySize: number;

  constructor(
    config: ComponentConfig,
    private readonly vocabulary = readVocabulary(config, 'tokenizer.json'),
  ) {
    this.tokens = invert(vocabulary);
    this.vocabularySize = Math.max(this.tokens.length, vocabulary.size);
    this.unknownToken = readOptionalString(config, 'unk_token');
    this.continuingSubwordPrefix = readOptionalString(config, 'continuing_subword_prefix') || undefined;
    this.endOfWordSuffix = readOptionalString(config, 'end_of_word_suffix') || undefined;
    this.fuseUnknown = readBoolean(config, 'fuse_unk', false);
    this.byteFallback = readBoolean(config, 'byte_fallback', false);
    this.ignoreMerges = readBoolean(config, 'ignore_merges', false);
    const merges = Array.isArray(config.merges) ? (config.merges as Array<string | [string, string]>) : [];
    const prefixLength = this.continuingSubwordPrefix?.length ?? 0;
    merges.forEach((merge, rank) => {
      // tokenizers < 0.20 writes "left right"; newer versions write ["left", "right"].
      const [left, right] = typeof merge === 'string' ? splitMergeLine(merge) : merge;
      const leftId = vocabulary.get(left);
      const rightId = vocabulary.get(right);
      const mergedId = vocabulary.get(left + right.slice(prefixLength));
      if (leftId === undefined || rightId === undefined || mergedId === undefined) return;
      const key = leftId * this.vocabularySize + rightId;
      if (!this.merges.has(key)) this.merges.set(key, { rank, mergedId });
    });
  }

  tokenToId(token: string): number | undefined {
    return this.vocabulary.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  tokenize(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const ids = this.mergeWord(word);
    if (this.cache.size >= wordCacheLimit) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  private mergeWord(word: string): number[] {
    if (this.ignoreMerges) {
      const whole = this.vocabulary.get(word);
      if (whole !== undefined) return [whole];
    }
    const symbols: number[] = [];
    const characters = Array.from(word);
    let pendingUnknown: number | undefined;
    const unknownId = this.unknownToken === undefined ? undefined : this.vocabulary.get(this.unknownToken);
    characters.forEach((character, index) => {
      let symbol = character;
      if (index > 0 && this.continuingSubwordPrefix) symbol = this.continuingSubwordPrefix + symbol;
      if (index === characters.length - 1 && this.endOfWordSuffix) symbol += this.endOfWordSuffix;
      const id = this.vocabulary.get(symbol);
      if (id !== undefined) {
        if (pendingUnknown !== undefined) symbols.push(pendingUnknown);
        pendingUnknown = undefined;
        symbols.push(id);
        return;
      }
      if (this.byteFallback) {
        const byteIds = Array.from(new TextEncoder().encode(symbol), (byte) =>
          this.vocabulary.get(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`),
        );
        if (byteIds.every((byteId) => byteId !== undefined)) {
          if (pendingUnknown !== undefined) symbols.push(pendingUnknown);
          pendingUnknown = undefined;
          symbols.push(...(byteIds as number[]));
          return;
        }
      }
      if (unknownId === undefined) return;
      if (pendingUnknown !== undefined && !this.fuseUnknown) symbols.push(pendingUnknown);
      pendingUnknown = unknownId;
    });
    if (pendingUnknown !== undefined) symbols.push(pendingUnknown);

    // Merge the lowest-ranked adjacent pair, leftmost first, until no pair has a merge.
    for (;;) {
      let bestRank = Infinity;
      let bestIndex = -1;
      let bestMergedId = -1;
      for (let index = 0; index < symbols.length - 1; index++) {
        const merge = this.merges.get(symbols[index] * this.vocabularySize + symbols[index + 1]);
        if (merge && merge.rank < bestRank) {
          bestRank = merge.rank;
          bestIndex = index;
          bestMergedId = merge.mergedId;
        }
      }
      if (bestIndex < 0) break;
      symbols.splice(bestIndex, 2, bestMergedId);
    }
    return symbols;
  }
}

function splitMergeLine(line: string): [string, string] {
  const space = line.indexOf(' ', 1);
  return [line.slice(0, space), line.slice(space + 1)];
}

/** BERT's greedy longest-match-first sub-word model; a word with any unmatchable part becomes the unknown token. */
export class WordPieceModel implements TokenizerModel {
  private readonly tokens: string[];
  private readonly unknownToken: string;
  private readonly continuingSubwordPrefix: string;
  private readonly maxInputCharactersPerWord: number;
  readonly vocabularySize: number;

  constructor(
    config: ComponentConfig,
    private readonly vocabulary = readVocabulary(config, 'tokenizer.json'),
  ) {
    this.tokens = invert(vocabulary);
    this.vocabularySize = Math.max(this.tokens.length, vocabulary.size);
    this.unknownToken = readOptionalString(config, 'unk_token') ?? '[UNK]';
    this.continuingSubwordPrefix = readOptionalString(config, 'continuing_subword_prefix') ?? '##';
    const maxCharacters = config.max_input_chars_per_word;
    this.maxInputCharactersPerWord = typeof maxCharacters === 'number' ? maxCharacters : 100;
  }

  tokenToId(token: string): number | undefined {
    return this.vocabulary.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  tokenize(word: string): number[] {
    const unknownId = this.vocabulary.get(this.unknownToken);
    const characters = Array.from(word);
    if (characters.length > this.maxInputCharactersPerWord) return unknownId === undefined ? [] : [unknownId];
    const ids: number[] = [];
    let start = 0;
    while (start < characters.length) {
      let end = characters.length;
      let found: number | undefined;
      while (start < end) {
        let candidate = characters.slice(start, end).join('');
        if (start > 0) candidate = this.continuingSubwordPrefix + candidate;
        found = this.vocabulary.get(candidate);
        if (found !== undefined) break;
        end--;
      }
      if (found === undefined) return unknownId === undefined ? [] : [unknownId];
      ids.push(found);
      start = end;
    }
    return ids;
  }
}

export function createModel(config: ComponentConfig): TokenizerModel {
  switch (config.type) {
    case 'BPE':
      return new BytePairEncodingModel(config);
    case 'WordPiece':
      return new WordPieceModel(config);
    default:
      return unsupported('model', config, supportedModels);
  }
}
