import { loadOnce } from '../common/load-once';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha256Hex, type ArtifactVersion, type LineageStore } from '../lineage';
import { InvalidModelArtifactError, ModelCacheCorruptError } from './errors';

/** Name of the file that marks a finished copy; it holds the artifact's manifest digest. */
const completeMarker = '.weft-artifact-digest';
/** Files up to this size are re-hashed when a process first uses a cached copy; model.onnx is checked by its session. */
const rehashLimitBytes = 8 * 1024 * 1024;
/**
 * ONNX weight files (trainer/weight_files.py) are re-hashed whatever their size: model.onnx no longer holds the weights,
 * so its session's hash no longer covers them (the cost is what hashing a single-file model.onnx was).
 */
const alwaysRehashed = /^weights\.[^/]+\.bin$/;

export interface MaterializedModel {
  /** The folder holding the artifact's files. */
  directory: string;
  artifact: ArtifactVersion;
}

/** The manifest digest of a file inside the artifact (the SHA-256 hex of its bytes), if it has one. */
export function manifestFileDigest(artifact: ArtifactVersion, filePath: string): string | undefined {
  return artifact.manifest.find((entry) => entry.path === filePath)?.digest;
}

/**
 * Model folders materialised from their artifacts under `<cacheRoot>/<artifact digest>`, fetched once per host and
 * checked once per process. Artifacts are content-addressed, so a folder never changes once complete; a copy that
 * no longer matches its manifest is removed and fetched again.
 */
export class ModelCache {
  /** Per process: artifact digest → folder, checked. */
  private readonly ready = new Map<string, Promise<string>>();

  constructor(
    private readonly store: LineageStore,
    /** `$WEFT_HOME/cache/models`. */
    readonly root: string,
  ) {}

  /** The local folder of a model artifact (ref `…:vN`, alias or registry ref), fetched on first use. */
  async materialize(
    artifactRef: string,
    requiredFiles: readonly string[] = ['model.onnx'],
  ): Promise<MaterializedModel> {
    const artifact = await this.store.artifacts.get(artifactRef);
    const missing = requiredFiles.filter((file) => manifestFileDigest(artifact, file) === undefined);
    if (missing.length > 0) {
      throw new InvalidModelArtifactError(
        `The artifact ${artifact.ref} (type "${artifact.type}") has no ${missing.join(', ')}; a model artifact holds an ` +
          'ONNX model folder (model.onnx, tokenizer.json, weft-model.json). Log the folder the trainer exported.',
      );
    }
    const directory = await loadOnce(this.ready, artifact.digest, () => this.fetch(artifact));
    return { directory, artifact };
  }

  /** Forgets and deletes a cached copy that turned out not to match (the caller fetches it again). */
  async evict(artifact: ArtifactVersion): Promise<void> {
    this.ready.delete(artifact.digest);
    await fs.promises.rm(this.directoryOf(artifact), { recursive: true, force: true });
  }

  directoryOf(artifact: ArtifactVersion): string {
    return path.join(this.root, artifact.digest);
  }

  private async fetch(artifact: ArtifactVersion): Promise<string> {
    const directory = this.directoryOf(artifact);
    if (fs.existsSync(path.join(directory, completeMarker))) {
      try {
        this.verify(artifact, directory);
        return directory;
      } catch (error) {
        if (!(error instanceof ModelCacheCorruptError)) throw error;
        await fs.promises.rm(directory, { recursive: true, force: true });
      }
    }
    await fs.promises.mkdir(this.root, { recursive: true });
    // Each process downloads into its own folder and renames it into place: a crash leaves no half folder under the
    // final name, and two processes fetching at once both end with the same complete copy.
    const staging = `${directory}.partial-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    try {
      // download() checks every file against its manifest digest while copying.
      await this.store.artifacts.download(artifact.ref, staging);
      await fs.promises.writeFile(path.join(staging, completeMarker), `${artifact.digest}\n`);
      try {
        await fs.promises.rename(staging, directory);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
        // Another process finished first; its copy is as good as ours.
      }
    } finally {
      await fs.promises.rm(staging, { recursive: true, force: true });
    }
    return directory;
  }

  /**
   * Sizes of every file and hashes of the small ones and the ONNX weight files; model.onnx's hash is compared once its
   * session has loaded.
   */
  private verify(artifact: ArtifactVersion, directory: string): void {
    for (const entry of artifact.manifest) {
      if (entry.digest === undefined) continue;
      const filePath = path.join(directory, entry.path);
      let size: number;
      try {
        size = fs.statSync(filePath).size;
      } catch {
        throw new ModelCacheCorruptError(`${filePath} is missing from the cached copy of ${artifact.ref}.`);
      }
      const rehash = size <= rehashLimitBytes || alwaysRehashed.test(entry.path);
      if (size !== entry.size || (rehash && sha256Hex(fs.readFileSync(filePath)) !== entry.digest)) {
        throw new ModelCacheCorruptError(`${filePath} does not match ${artifact.ref}; the cached copy was altered.`);
      }
    }
  }
}

/** The model cache of a WEFT_HOME: `$WEFT_HOME/cache/models`, one per store and process. */
export function modelCacheFor(store: LineageStore, home: string): ModelCache {
  return new ModelCache(store, path.join(home, 'cache', 'models'));
}
