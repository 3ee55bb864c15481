import { bytesToCharacters } from './byte-level';
import {
  type ComponentConfig,
  readBoolean,
  readComponents,
  readPattern,
  readString,
  unsupported,
} from './tokenizer-json';

/** Splits one normalised segment into the words the model tokenizes independently. */
export type PreTokenizer = (text: string, isFirstSegment: boolean) => string[];

export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

const supportedPreTokenizers = [
  'Sequence',
  'ByteLevel',
  'Split',
  'BertPreTokenizer',
  'Whitespace',
  'WhitespaceSplit',
  'Punctuation',
  'Digits',
  'Metaspace',
];

/** GPT-2's word pattern, as the ByteLevel pre-tokenizer applies it (with Oniguruma's whitespace). */
const gpt2WordPattern =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;
const whitespacePattern = /\p{White_Space}/gu;
/** Rust's `is_ascii_punctuation() || is_punctuation()`: ASCII symbols such as `$+<=>^`|~` count too. */
const punctuationPattern = /[\p{P}!-/:-@[-`{-~]/gu;
const wordOrSymbolsPattern =
  /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\p{White_Space}]+/gu;

/**
 * Splits text around the matches of a global pattern with one of Hugging Face's delimiter behaviours.
 * Patterns matching one character at a time reproduce the tokenizers crate's per-character predicates.
 */
export function splitWithBehavior(text: string, pattern: RegExp, behavior: SplitBehavior, invert = false): string[] {
  const spans: Array<{ start: number; end: number; isMatch: boolean }> = [];
  let previousEnd = 0;
  for (const match of text.matchAll(pattern)) {
    const start = match.index;
    const end = start + match[0].length;
    if (start !== previousEnd) spans.push({ start: previousEnd, end: start, isMatch: invert });
    spans.push({ start, end, isMatch: !invert });
    previousEnd = end;
  }
  if (previousEnd !== text.length) spans.push({ start: previousEnd, end: text.length, isMatch: invert });

  let merged: Array<{ start: number; end: number; isMatch: boolean }> = [];
  switch (behavior) {
    case 'Removed':
      merged = spans.filter((span) => !span.isMatch);
      break;
    case 'Isolated':
      merged = spans;
      break;
    case 'MergedWithPrevious': {
      let previousWasMatch = false;
      for (const span of spans) {
        const last = merged[merged.length - 1];
        if (span.isMatch && !previousWasMatch && last) last.end = span.end;
        else merged.push({ ...span });
        previousWasMatch = span.isMatch;
      }
      break;
    }
    case 'MergedWithNext': {
      let previousWasMatch = false;
      for (let index = spans.length - 1; index >= 0; index--) {
        const span = spans[index];
        const last = merged[merged.length - 1];
        if (span.isMatch && !previousWasMatch && last) last.start = span.start;
        else merged.push({ ...span });
        previousWasMatch = span.isMatch;
      }
      merged.reverse();
      break;
    }
    case 'Contiguous': {
      let previousWasMatch = false;
      for (const span of spans) {
        const last = merged[merged.length - 1];
        if (span.isMatch === previousWasMatch && last) last.end = span.end;
        else merged.push({ ...span });
        previousWasMatch = span.isMatch;
      }
      break;
    }
  }
  return merged.map((span) => text.slice(span.start, span.end)).filter((piece) => piece.length > 0);
}

function readBehavior(config: ComponentConfig, fallback: SplitBehavior): SplitBehavior {
  const behavior = readString(config, 'behavior', fallback);
  const known: SplitBehavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];
  if (!known.includes(behavior as SplitBehavior)) {
    return unsupported('split behavior', { type: behavior }, known);
  }
  return behavior as SplitBehavior;
}

export function createPreTokenizer(config: ComponentConfig | null | undefined): PreTokenizer {
  if (!config) return (text) => [text];
  switch (config.type) {
    case 'Sequence': {
      const steps = readComponents(config, 'pretokenizers').map((step) => createPreTokenizer(step));
      return (text, isFirstSegment) =>
        steps.reduce<string[]>(
          (pieces, step) => pieces.flatMap((piece, index) => step(piece, isFirstSegment && index === 0)),
          [text],
        );
    }
    case 'ByteLevel': {
      const addPrefixSpace = readBoolean(config, 'add_prefix_space', true);
      const useRegex = readBoolean(config, 'use_regex', true);
      return (text) => {
        const prefixed = addPrefixSpace && !text.startsWith(' ') ? ' ' + text : text;
        const words = useRegex ? splitWithBehavior(prefixed, gpt2WordPattern, 'Isolated') : [prefixed];
        return words.map(bytesToCharacters);
      };
    }
    case 'Split': {
      const pattern = readPattern(config, 'pattern');
      const behavior = readBehavior(config, 'Isolated');
      const invert = readBoolean(config, 'invert', false);
      return (text) => splitWithBehavior(text, pattern, behavior, invert);
    }
    case 'BertPreTokenizer':
      return (text) =>
        splitWithBehavior(text, whitespacePattern, 'Removed').flatMap((word) =>
          splitWithBehavior(word, punctuationPattern, 'Isolated'),
        );
    case 'Whitespace':
      return (text) => splitWithBehavior(text, wordOrSymbolsPattern, 'Removed', true);
    case 'WhitespaceSplit':
      return (text) => splitWithBehavior(text, whitespacePattern, 'Removed');
    case 'Punctuation': {
      const behavior = readBehavior(config, 'Isolated');
      return (text) => splitWithBehavior(text, punctuationPattern, behavior);
    }
    case 'Digits': {
      const individualDigits = readBoolean(config, 'individual_digits', false);
      return (text) => splitWithBehavior(text, /\p{Nd}/gu, individualDigits ? 'Isolated' : 'Contiguous');
    }
    case 'Metaspace': {
      const replacement = readString(config, 'replacement', '\u2581');
      const prependScheme = readString(config, 'prepend_scheme', 'always');
      const split = readBoolean(config, 'split', true);
      return (text, isFirstSegment) => {
        let replaced = text.replaceAll(' ', replacement);
        const shouldPrepend = prependScheme === 'always' || (prependScheme === 'first' && isFirstSegment);
        if (shouldPrepend && !replaced.startsWith(replacement)) replaced = replacement + replaced;
        if (!split) return [replaced];
        return splitWithBehavior(replaced, new RegExp(replacement, 'gu'), 'MergedWithNext');
      };
    }
    default:
      return unsupported('pre-tokenizer', config, supportedPreTokenizers);
  }
}
