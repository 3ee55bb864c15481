import { createHash } from 'node:crypto';
import type { Payload, PayloadValue } from './vector-store';

/**
 * The embedded store's payload index: every scalar a filter can address, as (key, type, value) rows.
 * Filtering then reads an index instead of parsing each point's payload, so a filtered query costs
 * in proportion to the points that match. The flattening follows Qdrant's addressing: dotted keys
 * reach into objects, an array contributes each scalar element under its own key, and nothing inside
 * an array of objects is reachable (Qdrant needs `[]` keys for that, which weft does not support).
 */

export type IndexedType = 'text' | 'text-digest' | 'integer' | 'real' | 'true' | 'false';

export interface PayloadLeaf {
  key: string;
  type: IndexedType;
  value: string | number;
}

/** Longer strings (chunk texts) are indexed by digest, so the index does not hold a second copy of them. */
const longestIndexedText = 64;

/** A string as the index holds it; a filter value goes through the same function to be compared. */
export function indexedText(text: string): { type: 'text' | 'text-digest'; value: string } {
  if (text.length <= longestIndexedText) return { type: 'text', value: text };
  return { type: 'text-digest', value: createHash('sha256').update(text).digest('hex') };
}

export function payloadLeaves(payload: Payload): PayloadLeaf[] {
  const leaves: PayloadLeaf[] = [];
  collect(payload, '', leaves);
  return leaves;
}

function collect(object: { [key: string]: PayloadValue }, prefix: string, leaves: PayloadLeaf[]): void {
  for (const [name, value] of Object.entries(object)) {
    // A key holding a dot, bracket or quote cannot be named in a filter (a dot means nesting).
    if (name.length === 0 || /[.[\]"]/.test(name)) continue;
    const key = prefix === '' ? name : `${prefix}.${name}`;
    if (Array.isArray(value)) {
      for (const element of value) addScalar(key, element, leaves);
    } else if (value !== null && typeof value === 'object') {
      collect(value, key, leaves);
    } else {
      addScalar(key, value, leaves);
    }
  }
}

function addScalar(key: string, value: PayloadValue, leaves: PayloadLeaf[]): void {
  if (typeof value === 'string') leaves.push({ key, ...indexedText(value) });
  else if (typeof value === 'number')
    leaves.push({ key, type: Number.isSafeInteger(value) ? 'integer' : 'real', value });
  else if (typeof value === 'boolean') leaves.push({ key, type: value ? 'true' : 'false', value: value ? 1 : 0 });
  // null, and objects or arrays nested in arrays, match no supported condition.
}
