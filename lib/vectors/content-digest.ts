import { createHash } from 'node:crypto';
import type { Payload, PayloadValue, VectorParams } from './vector-store';

/**
 * A collection's content version is a digest over its params and the multiset of its points. Each point
 * hashes to 256 bits; the collection sums them modulo 2^256. The sum does not depend on order, so the
 * embedded store updates it per write (subtract the old hash, add the new one) and Qdrant's adapter
 * computes the same value by scrolling — and re-upserting identical points leaves it unchanged.
 */

const modulus = 1n << 256n;
export const emptyDigestSum = '0'.repeat(64);

/** JSON with object keys sorted, so payloads that differ only in key order hash the same. */
export function canonicalJson(value: PayloadValue | Payload): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
}

/** Hex sha256 of one point: id, canonical payload and the float32 bytes of its stored vector. */
export function pointContentHash(id: string, vector: Float32Array, payload: Payload): string {
  return createHash('sha256')
    .update(id)
    .update('\0')
    .update(canonicalJson(payload))
    .update('\0')
    .update(Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength))
    .digest('hex');
}

export function addToDigestSum(sum: string, pointHash: string): string {
  return toHex((BigInt(`0x${sum}`) + BigInt(`0x${pointHash}`)) % modulus);
}

export function subtractFromDigestSum(sum: string, pointHash: string): string {
  return toHex((BigInt(`0x${sum}`) - BigInt(`0x${pointHash}`) + modulus) % modulus);
}

/** The content version callers see: the params, the point count and the hash sum, hashed once more. */
export function contentVersionOf(params: VectorParams, pointsCount: number, digestSum: string): string {
  return createHash('sha256')
    .update(`weft-vectors-v1\0${params.size}\0${params.distance}\0${pointsCount}\0${digestSum}`)
    .digest('hex');
}

function toHex(value: bigint): string {
  return value.toString(16).padStart(64, '0');
}
