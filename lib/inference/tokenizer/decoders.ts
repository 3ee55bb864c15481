import { charactersToText } from './byte-level';
import {
  type ComponentConfig,
  readBoolean,
  readComponents,
  readPattern,
  readString,
  unsupported,
} from './tokenizer-json';

/** Turns a run of vocabulary tokens back into text; steps transform the token list like the tokenizers crate. */
export type Decoder = (tokens: string[]) => string[];

const supportedDecoders = [
  'ByteLevel',
  'WordPiece',
  'Metaspace',
  'Replace',
  'ByteFallback',
  'Fuse',
  'Strip',
  'BPEDecoder',
  'Sequence',
];

/** BERT's clean-up: no space before punctuation and contractions. */
export function cleanUpTokenizationSpaces(text: string): string {
  return text
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

const byteTokenPattern = /^<0x([0-9A-Fa-f]{2})>$/;

export function createDecoder(config: ComponentConfig | null | undefined): Decoder {
  if (!config) return (tokens) => [tokens.join(' ')];
  switch (config.type) {
    case 'ByteLevel':
      return (tokens) => [charactersToText(tokens.join(''))];
    case 'WordPiece': {
      const prefix = readString(config, 'prefix', '##');
      const cleanup = readBoolean(config, 'cleanup', true);
      return (tokens) =>
        tokens.map((token, index) => {
          let piece = token;
          if (index > 0) piece = piece.startsWith(prefix) ? piece.slice(prefix.length) : ' ' + piece;
          return cleanup ? cleanUpTokenizationSpaces(piece) : piece;
        });
    }
    case 'Metaspace': {
      const replacement = readString(config, 'replacement', '\u2581');
      const prependScheme = readString(config, 'prepend_scheme', 'always');
      return (tokens) =>
        tokens.map((token, index) => {
          const piece = token.replaceAll(replacement, ' ');
          return index === 0 && prependScheme !== 'never' && piece.startsWith(' ') ? piece.slice(1) : piece;
        });
    }
    case 'Replace': {
      const pattern = readPattern(config, 'pattern');
      const content = readString(config, 'content', '');
      return (tokens) => tokens.map((token) => token.replace(pattern, () => content));
    }
    case 'ByteFallback':
      return (tokens) => {
        const output: string[] = [];
        let pendingBytes: number[] = [];
        const flush = (): void => {
          if (pendingBytes.length === 0) return;
          const text = new TextDecoder('utf-8', { fatal: false }).decode(new Uint8Array(pendingBytes));
          // An invalid byte run decodes to one replacement character per byte, as in the tokenizers crate.
          output.push(text.includes('\ufffd') ? '\ufffd'.repeat(pendingBytes.length) : text);
          pendingBytes = [];
        };
        for (const token of tokens) {
          const byteMatch = byteTokenPattern.exec(token);
          if (byteMatch) pendingBytes.push(parseInt(byteMatch[1], 16));
          else {
            flush();
            output.push(token);
          }
        }
        flush();
        return output;
      };
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip': {
      const content = readString(config, 'content', ' ');
      const start = typeof config.start === 'number' ? config.start : 0;
      const stop = typeof config.stop === 'number' ? config.stop : 0;
      return (tokens) =>
        tokens.map((token) => {
          const characters = Array.from(token);
          let from = 0;
          while (from < start && characters[from] === content) from++;
          let to = characters.length;
          while (characters.length - to < stop && to > from && characters[to - 1] === content) to--;
          return characters.slice(from, to).join('');
        });
    }
    case 'BPEDecoder': {
      const suffix = readString(config, 'suffix', '</w>');
      return (tokens) => tokens.map((token, index) => token.replaceAll(suffix, index === tokens.length - 1 ? '' : ' '));
    }
    case 'Sequence': {
      const steps = readComponents(config, 'decoders').map(createDecoder);
      return (tokens) => steps.reduce((current, step) => step(current), tokens);
    }
    default:
      return unsupported('decoder', config, supportedDecoders);
  }
}
