import fs from 'node:fs';
import crypto from 'node:crypto';
import { InvalidValueError } from './errors';

/**
 * Weave's digest algorithm, so a value gets the same digest here as in W&B Weave:
 * SHA-256, URL-safe base64 with "-" → "X", "_" → "Y" and no padding, over the JSON text
 * Python's `json.dumps(value, sort_keys=True)` writes (", " and ": " separators, non-ASCII as \uXXXX).
 * Table digests are the hex SHA-256 of the concatenated row digests, in row order.
 */

function weaveBase64(base64url: string): string {
  return base64url.replace(/-/g, 'X').replace(/_/g, 'Y');
}

export function bytesDigest(bytes: Uint8Array): string {
  return weaveBase64(crypto.createHash('sha256').update(bytes).digest('base64url'));
}

export function stringDigest(text: string): string {
  // One-shot crypto.hash (Node >= 20.12) is about twice as fast per row as createHash; big datasets hash every row.
  if (typeof crypto.hash === 'function') return weaveBase64(crypto.hash('sha256', text, 'base64url'));
  return weaveBase64(crypto.createHash('sha256').update(text, 'utf8').digest('base64url'));
}

const NON_ASCII = /[\u0080-\uffff]/;

/** Python's ensure_ascii: every code unit above 0x7F becomes a \uXXXX escape (surrogate pairs stay pairs). */
function pythonString(text: string): string {
  const encoded = JSON.stringify(text);
  if (!NON_ASCII.test(encoded)) return encoded;
  return encoded.replace(/[\u0080-\uffff]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function describePath(path: string[]): string {
  return path.length === 0 ? 'the value' : `the value at ${path.join('.')}`;
}

/**
 * The canonical JSON text of a value. Keys whose value is undefined are dropped (as JSON.stringify does);
 * anything JSON cannot represent is rejected with the path to it, so nothing is silently changed.
 */
export function canonicalJson(value: unknown): string {
  // One shared path stack (pushed and popped) instead of a new array per key: this runs for every row of big datasets.
  const path: string[] = [];
  const seen = new Set<object>();
  const encode = (item: unknown): string => {
    if (item === null) return 'null';
    switch (typeof item) {
      case 'string':
        return pythonString(item);
      case 'boolean':
        return item ? 'true' : 'false';
      case 'number':
        if (!Number.isFinite(item)) {
          throw new InvalidValueError(
            `${describePath(path)} is ${item}; only finite numbers can be stored (use null or a string).`,
          );
        }
        return String(item);
      case 'object':
        break;
      default:
        throw new InvalidValueError(
          `${describePath(path)} is a ${typeof item}; values must be JSON: objects, arrays, strings, finite numbers, booleans or null.`,
        );
    }
    const objectItem = item as object;
    if (seen.has(objectItem)) {
      throw new InvalidValueError(
        `${describePath(path)} refers back to itself; values must be trees, not cycles (store a ref instead).`,
      );
    }
    if (Array.isArray(objectItem)) {
      seen.add(objectItem);
      const encoded: string[] = [];
      for (let index = 0; index < objectItem.length; index++) {
        path.push(String(index));
        const element: unknown = objectItem[index];
        encoded.push(encode(element === undefined ? null : element));
        path.pop();
      }
      seen.delete(objectItem);
      return `[${encoded.join(', ')}]`;
    }
    const prototype = Object.getPrototypeOf(objectItem) as object | null;
    if (prototype !== Object.prototype && prototype !== null) {
      const typeName = (objectItem as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw new InvalidValueError(
        `${describePath(path)} is a ${typeName}; store plain objects only (dates as ISO strings, bytes as files, other objects as refs).`,
      );
    }
    seen.add(objectItem);
    const record = objectItem as Record<string, unknown>;
    const pairs: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const member = record[key];
      if (member === undefined) continue;
      path.push(key);
      pairs.push(`${pythonString(key)}: ${encode(member)}`);
      path.pop();
    }
    seen.delete(objectItem);
    return `{${pairs.join(', ')}}`;
  };
  return encode(value);
}

/** Digest of an object version's value (Weave's object digest). */
export function objectDigest(value: unknown): string {
  return stringDigest(canonicalJson(value));
}

/** Digest of one table row (Weave's row digest). */
export function rowDigest(row: unknown): string {
  return stringDigest(canonicalJson(row));
}

/** Digest of a table from its ordered row digests (Weave's table digest: hex, order-dependent). */
export function tableDigest(rowDigests: readonly string[]): string {
  const hasher = crypto.createHash('sha256');
  for (const digest of rowDigests) hasher.update(digest);
  return hasher.digest('hex');
}

/** SHA-256 hex of bytes (or of a string's UTF-8): the blob store's address for artifact files, and weft's hasher. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 hex of a file's bytes, read as a stream (model weights do not fit in one buffer comfortably). */
export function sha256OfFile(filePath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    fs.createReadStream(filePath)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
