import { UnsupportedTokenizerError } from '../errors';

/** One component object of tokenizer.json (`{"type": "...", ...}`); fields are read through the helpers below. */
export interface ComponentConfig {
  type: string;
  [field: string]: unknown;
}

/** The parts of a Hugging Face tokenizer.json weft reads. */
export interface TokenizerJson {
  added_tokens?: AddedTokenConfig[];
  normalizer?: ComponentConfig | null;
  pre_tokenizer?: ComponentConfig | null;
  model: ComponentConfig;
  post_processor?: ComponentConfig | null;
  decoder?: ComponentConfig | null;
  truncation?: { max_length?: number; direction?: string } | null;
}

export interface AddedTokenConfig {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

export function readBoolean(config: ComponentConfig, field: string, fallback: boolean): boolean {
  const value = config[field];
  return typeof value === 'boolean' ? value : fallback;
}

export function readString(config: ComponentConfig, field: string, fallback: string): string {
  const value = config[field];
  return typeof value === 'string' ? value : fallback;
}

export function readOptionalString(config: ComponentConfig, field: string): string | undefined {
  const value = config[field];
  return typeof value === 'string' ? value : undefined;
}

export function readComponents(config: ComponentConfig, field: string): ComponentConfig[] {
  const value = config[field];
  return Array.isArray(value) ? (value as ComponentConfig[]) : [];
}

/** Throws the typed error listing what weft implements when a component type is unknown. */
export function unsupported(component: string, config: ComponentConfig, supported: readonly string[]): never {
  throw new UnsupportedTokenizerError(component, String(config.type), supported);
}

/**
 * Turns a Rust/Oniguruma pattern from tokenizer.json into an equivalent JavaScript regular expression.
 * `\s` becomes the Unicode White_Space property (what Oniguruma matches; JS `\s` also matches U+FEFF), and
 * scoped case-insensitive groups `(?i:…)`, which Node 20 lacks, are expanded letter by letter.
 */
export function translatePattern(pattern: string): RegExp {
  let translated = '';
  let caseInsensitiveDepth = 0;
  const groupIsCaseInsensitive: boolean[] = [];
  let inClass = false;
  for (let index = 0; index < pattern.length; index++) {
    const character = pattern[index];
    if (character === '\\') {
      const next = pattern[index + 1];
      index++;
      if (next === 's') translated += '\\p{White_Space}';
      else if (next === 'S') translated += '\\P{White_Space}';
      else translated += '\\' + next;
      continue;
    }
    if (inClass) {
      if (character === ']') inClass = false;
      translated += character;
      continue;
    }
    if (character === '[') {
      inClass = true;
      translated += character;
      continue;
    }
    if (character === '(') {
      if (pattern.startsWith('(?i:', index)) {
        groupIsCaseInsensitive.push(true);
        caseInsensitiveDepth++;
        translated += '(?:';
        index += 3;
        continue;
      }
      groupIsCaseInsensitive.push(false);
      translated += character;
      continue;
    }
    if (character === ')') {
      if (groupIsCaseInsensitive.pop() === true) caseInsensitiveDepth--;
      translated += character;
      continue;
    }
    if (caseInsensitiveDepth > 0 && /[a-zA-Z]/.test(character)) {
      translated += `[${character.toLowerCase()}${character.toUpperCase()}]`;
      continue;
    }
    translated += character;
  }
  return new RegExp(translated, 'gu');
}

/** Escapes a literal for use inside a RegExp. */
export function escapeRegExp(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Reads a `{"String": "…"}` or `{"Regex": "…"}` pattern object. */
export function readPattern(config: ComponentConfig, field: string): RegExp {
  const pattern = config[field] as { String?: string; Regex?: string } | undefined;
  if (pattern?.Regex !== undefined) return translatePattern(pattern.Regex);
  if (pattern?.String !== undefined) return new RegExp(escapeRegExp(pattern.String), 'gu');
  throw new UnsupportedTokenizerError(`${config.type} pattern`, JSON.stringify(pattern), ['String', 'Regex']);
}
