import { loadOnce } from '../common/load-once';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { CorruptModelError, ModelFileNotFoundError } from './errors';

export type ExecutionProvider = 'cpu' | 'cuda';

/** The part of Temporal's logger (and console) inference uses; injected so workers log through Temporal. */
export interface InferenceLogger {
  warn(message: string, attributes?: Record<string, unknown>): void;
  info?(message: string, attributes?: Record<string, unknown>): void;
}

export interface SessionOptions {
  /** Where onnxruntime runs the model. Default 'cpu'; 'cuda' falls back to 'cpu' with a warning when it cannot load. */
  executionProvider?: ExecutionProvider;
  /** CUDA device ordinal when executionProvider is 'cuda'. Default 0. */
  deviceId?: number;
  /** Threads one forward pass may use on CPU. Default: the cores available to this process, at most 8. */
  intraOpThreads?: number;
  logger?: InferenceLogger;
}

export interface LoadedSession {
  session: ort.InferenceSession;
  /**
   * sha256 of model.onnx, hex: the identity of the weights whatever their path (an export with per-layer weight files
   * records their sha256 inside model.onnx, trainer/weight_files.py, so this covers them too).
   */
  digest: string;
  modelPath: string;
  /** The provider actually in use (cpu after a CUDA fallback). */
  executionProvider: ExecutionProvider;
}

const consoleLogger: InferenceLogger = { warn: (message, attributes) => console.warn(message, attributes ?? '') };

/** Sessions per (digest, provider, device, threads): a process loads each model once, however many callers ask. */
const sessions = new Map<string, Promise<LoadedSession>>();
/** Digests per (path, size, mtime), so a reload does not re-hash hundreds of megabytes. */
const digests = new Map<string, string>();

export function defaultIntraOpThreads(): number {
  return Math.max(1, Math.min(8, os.availableParallelism()));
}

async function fileDigest(modelPath: string, what: string): Promise<string> {
  let stats;
  try {
    stats = await fs.stat(modelPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelFileNotFoundError(modelPath, what);
    throw error;
  }
  if (!stats.isFile()) throw new ModelFileNotFoundError(modelPath, what);
  const memoKey = `${modelPath}:${stats.size}:${stats.mtimeMs}`;
  const memo = digests.get(memoKey);
  if (memo) return memo;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(modelPath)) hash.update(chunk as Buffer);
  const digest = hash.digest('hex');
  digests.set(memoKey, digest);
  return digest;
}

async function createSession(
  modelPath: string,
  provider: ExecutionProvider,
  deviceId: number,
  intraOpThreads: number,
): Promise<ort.InferenceSession> {
  const executionProviders: ort.InferenceSession.ExecutionProviderConfig[] =
    provider === 'cuda' ? [{ name: 'cuda', deviceId } as ort.InferenceSession.ExecutionProviderConfig] : ['cpu'];
  return ort.InferenceSession.create(modelPath, {
    executionProviders,
    // A missing CUDA library is reported once, as weft's own warning, instead of as an onnxruntime error on stderr.
    logSeverityLevel: provider === 'cuda' ? 4 : 2,
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // A weft host runs Temporal and several workers side by side: idle intra-op threads that spin steal their cores.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
}

/**
 * Loads (once per process) an ONNX model. A CUDA request that cannot be honoured (no GPU build, no device)
 * degrades to CPU with a warning rather than failing the activity: the result is the same, only slower.
 */
export async function loadSession(
  modelPath: string,
  what: string,
  options: SessionOptions = {},
): Promise<LoadedSession> {
  const requested = options.executionProvider ?? 'cpu';
  const deviceId = options.deviceId ?? 0;
  const intraOpThreads = options.intraOpThreads ?? defaultIntraOpThreads();
  const logger = options.logger ?? consoleLogger;
  const digest = await fileDigest(modelPath, what);
  const key = `${digest}:${requested}:${deviceId}:${intraOpThreads}`;
  return loadOnce(sessions, key, async (): Promise<LoadedSession> => {
    if (requested === 'cuda') {
      try {
        const session = await createSession(modelPath, 'cuda', deviceId, intraOpThreads);
        return { session, digest, modelPath, executionProvider: 'cuda' };
      } catch (error) {
        logger.warn(
          `CUDA execution provider could not load for ${modelPath} on device ${deviceId}; running on CPU instead. ` +
            '`weft doctor` names what is missing (README: Running on a GPU); WEFT_EXECUTION_PROVIDER=cpu silences this.',
          { reason: (error as Error).message, deviceId },
        );
      }
    }
    try {
      const session = await createSession(modelPath, 'cpu', deviceId, intraOpThreads);
      return { session, digest, modelPath, executionProvider: 'cpu' };
    } catch (error) {
      throw new CorruptModelError(modelPath, `onnxruntime rejected it (${(error as Error).message.split('\n')[0]})`);
    }
  });
}

/** Releases every cached session (tests, and workers shutting down). */
export async function releaseAllSessions(): Promise<void> {
  const loaded = [...sessions.values()];
  sessions.clear();
  for (const loading of loaded) {
    try {
      await (await loading).session.release();
    } catch {
      // A session that failed to load has nothing to release.
    }
  }
}
