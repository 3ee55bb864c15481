import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { CorruptBlobError, InvalidValueError, NotFoundError, storageFullOr } from './errors';

/**
 * Content-addressed files under one folder, named by SHA-256. Every write goes to a temporary file
 * and is renamed into place, so a crash never leaves a half-written blob under its final name;
 * every read re-hashes, so a file altered on disk is reported instead of handed on.
 */
export class BlobStore {
  constructor(readonly root: string) {}

  pathOf(digest: string): string {
    return path.join(this.root, 'sha256', digest.slice(0, 2), digest.slice(2, 4), digest);
  }

  private temporaryPath(folder: string): string {
    return path.join(folder, `.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  }

  /** Stores bytes; returns their SHA-256 hex digest and size. */
  async putBytes(bytes: Uint8Array): Promise<{ digest: string; size: number }> {
    const digest = crypto.createHash('sha256').update(bytes).digest('hex');
    const target = this.pathOf(digest);
    if (!fs.existsSync(target)) {
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      const temporary = this.temporaryPath(path.dirname(target));
      try {
        await fs.promises.writeFile(temporary, bytes);
        await fs.promises.rename(temporary, target);
      } catch (error) {
        // A full disk leaves a partial temporary file: remove it, so the space it took comes back.
        await fs.promises.rm(temporary, { force: true });
        throw storageFullOr(error, `the blob store ${this.root}`);
      }
    }
    return { digest, size: bytes.byteLength };
  }

  /** Stores a local file by streaming it (model weights can be gigabytes); returns its digest and size. */
  async putFile(localPath: string): Promise<{ digest: string; size: number }> {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(localPath);
    } catch {
      throw new InvalidValueError(
        `The file ${localPath} does not exist or cannot be read; pass an existing file path.`,
      );
    }
    if (!stat.isFile()) throw new InvalidValueError(`${localPath} is not a regular file; add folders file by file.`);
    const staging = path.join(this.root, 'staging');
    await fs.promises.mkdir(staging, { recursive: true });
    const temporary = this.temporaryPath(staging);
    const hasher = crypto.createHash('sha256');
    let size = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hasher.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    try {
      await pipeline(fs.createReadStream(localPath), hashing, fs.createWriteStream(temporary));
      const digest = hasher.digest('hex');
      const target = this.pathOf(digest);
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      // Same content written by another process already: its copy is identical, ours is dropped.
      if (fs.existsSync(target)) await fs.promises.rm(temporary, { force: true });
      else await fs.promises.rename(temporary, target);
      return { digest, size };
    } catch (error) {
      await fs.promises.rm(temporary, { force: true });
      throw storageFullOr(error, `the blob store ${this.root}`);
    }
  }

  /** Reads a blob and checks it against its digest. */
  async readVerified(digest: string): Promise<Buffer> {
    const source = this.pathOf(digest);
    let bytes: Buffer;
    try {
      bytes = await fs.promises.readFile(source);
    } catch {
      throw new NotFoundError(
        `The blob ${digest} is missing from ${this.root}; the blob folder is incomplete — restore it from backup or log the artifact again.`,
      );
    }
    const actual = crypto.createHash('sha256').update(bytes).digest('hex');
    if (actual !== digest) {
      throw new CorruptBlobError(
        `The blob ${source} is corrupt (its SHA-256 is ${actual}, expected ${digest}); restore it from backup or log the artifact again.`,
      );
    }
    return bytes;
  }

  /** Copies a blob to `destination`, verifying the digest on the way; the file appears only when it is whole and correct. */
  async copyVerified(digest: string, destination: string): Promise<void> {
    const source = this.pathOf(digest);
    if (!fs.existsSync(source)) {
      throw new NotFoundError(
        `The blob ${digest} is missing from ${this.root}; restore the blob folder or log the artifact again.`,
      );
    }
    await fs.promises.mkdir(path.dirname(destination), { recursive: true });
    const temporary = this.temporaryPath(path.dirname(destination));
    const hasher = crypto.createHash('sha256');
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hasher.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(fs.createReadStream(source), hashing, fs.createWriteStream(temporary));
      const actual = hasher.digest('hex');
      if (actual !== digest) {
        throw new CorruptBlobError(
          `The blob ${source} is corrupt (its SHA-256 is ${actual}, expected ${digest}); nothing was written to ${destination}. Restore the blob from backup or log the artifact again.`,
        );
      }
      await fs.promises.rename(temporary, destination);
    } catch (error) {
      await fs.promises.rm(temporary, { force: true });
      throw storageFullOr(error, path.dirname(destination));
    }
  }
}
