import crypto from 'node:crypto';
import fs from 'node:fs';

/** A W&B artifact manifest (`wandb_manifest.json`, version 1): base64 MD5 per file, the URI as a reference's digest. */
export interface WandbManifestFile {
  version: 1;
  storagePolicy: 'wandb-storage-policy-v1';
  storagePolicyConfig: { storageLayout: 'V2' };
  contents: Record<string, { digest: string; size: number; ref?: string }>;
}

export async function md5OfFile(file: string): Promise<string> {
  const hash = crypto.createHash('md5');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('base64');
}

export const md5OfBytes = (bytes: Buffer | string): string => crypto.createHash('md5').update(bytes).digest('base64');

/**
 * The artifact digest W&B computes from a manifest (MD5 of a header line and one `path:digest` line per entry,
 * sorted by path), sent with createArtifact so the server can recognise content it already holds.
 */
export function artifactDigest(manifest: WandbManifestFile): string {
  const hash = crypto.createHash('md5');
  hash.update('wandb-artifact-manifest-v1\n');
  for (const entryPath of Object.keys(manifest.contents).sort()) {
    hash.update(`${entryPath}:${manifest.contents[entryPath]!.digest}\n`);
  }
  return hash.digest('hex');
}
