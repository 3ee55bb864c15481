import {
  type ComponentConfig,
  readBoolean,
  readComponents,
  readPattern,
  readString,
  unsupported,
} from './tokenizer-json';

/** Rewrites text before it is split into words; the same steps, in the same order, as Hugging Face tokenizers. */
export type Normalizer = (text: string) => string;

const supportedNormalizers = [
  'Sequence',
  'NFC',
  'NFD',
  'NFKC',
  'NFKD',
  'Lowercase',
  'StripAccents',
  'Strip',
  'Replace',
  'Prepend',
  'BertNormalizer',
];

const controlCharacter = /\p{C}/u;
const whitespaceCharacter = /\p{White_Space}/u;
const nonSpacingMarks = /\p{Mn}/gu;
const combiningMarks = /\p{M}/gu;

/** Rust's `char::to_lowercase`, one code point at a time: no context-dependent final sigma as in String#toLowerCase. */
export function lowercaseByCodePoint(text: string): string {
  let lowered = '';
  for (const character of text) lowered += character.toLowerCase();
  return lowered;
}

/** The CJK Unified Ideograph blocks BERT surrounds with spaces so each ideograph is a word. */
export function isChineseCharacter(codePoint: number): boolean {
  return (
    (codePoint >= 0x4e00 && codePoint <= 0x9fff) ||
    (codePoint >= 0x3400 && codePoint <= 0x4dbf) ||
    (codePoint >= 0x20000 && codePoint <= 0x2a6df) ||
    (codePoint >= 0x2a700 && codePoint <= 0x2b73f) ||
    (codePoint >= 0x2b740 && codePoint <= 0x2b81f) ||
    (codePoint >= 0x2b920 && codePoint <= 0x2ceaf) ||
    (codePoint >= 0xf900 && codePoint <= 0xfaff) ||
    (codePoint >= 0x2f800 && codePoint <= 0x2fa1f)
  );
}

function bertNormalizer(config: ComponentConfig): Normalizer {
  const cleanText = readBoolean(config, 'clean_text', true);
  const handleChineseCharacters = readBoolean(config, 'handle_chinese_chars', true);
  const lowercase = readBoolean(config, 'lowercase', true);
  // A null strip_accents follows lowercase, as in the original BERT uncased models.
  const stripAccents = typeof config.strip_accents === 'boolean' ? config.strip_accents : lowercase;
  return (text) => {
    let normalized = text;
    if (cleanText || handleChineseCharacters) {
      let rebuilt = '';
      for (const character of normalized) {
        const codePoint = character.codePointAt(0) as number;
        if (cleanText) {
          const isTabOrNewline = character === '\t' || character === '\n' || character === '\r';
          if (codePoint === 0 || codePoint === 0xfffd || (!isTabOrNewline && controlCharacter.test(character)))
            continue;
          if (isTabOrNewline || whitespaceCharacter.test(character)) {
            rebuilt += ' ';
            continue;
          }
        }
        if (handleChineseCharacters && isChineseCharacter(codePoint)) rebuilt += ` ${character} `;
        else rebuilt += character;
      }
      normalized = rebuilt;
    }
    if (stripAccents) normalized = normalized.normalize('NFD').replace(nonSpacingMarks, '');
    if (lowercase) normalized = lowercaseByCodePoint(normalized);
    return normalized;
  };
}

export function createNormalizer(config: ComponentConfig | null | undefined): Normalizer | undefined {
  if (!config) return undefined;
  switch (config.type) {
    case 'Sequence': {
      const steps = readComponents(config, 'normalizers').map((step) => createNormalizer(step) as Normalizer);
      return (text) => steps.reduce((current, step) => step(current), text);
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = config.type;
      return (text) => text.normalize(form);
    }
    case 'Lowercase':
      return lowercaseByCodePoint;
    case 'StripAccents':
      return (text) => text.replace(combiningMarks, '');
    case 'Strip': {
      const left = readBoolean(config, 'left', true);
      const right = readBoolean(config, 'right', true);
      return (text) => {
        let stripped = text;
        if (left) stripped = stripped.replace(/^\p{White_Space}+/u, '');
        if (right) stripped = stripped.replace(/\p{White_Space}+$/u, '');
        return stripped;
      };
    }
    case 'Replace': {
      const pattern = readPattern(config, 'pattern');
      const content = readString(config, 'content', '');
      return (text) => text.replace(pattern, () => content);
    }
    case 'Prepend': {
      const prefix = readString(config, 'prepend', '');
      return (text) => (text.length > 0 ? prefix + text : text);
    }
    case 'BertNormalizer':
      return bertNormalizer(config);
    default:
      return unsupported('normalizer', config, supportedNormalizers);
  }
}
