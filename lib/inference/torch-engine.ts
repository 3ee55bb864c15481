import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { trainerEnvironment } from '../common/child-environment';
import { loadOnce } from '../common/load-once';
import { DecodeEngineRunError, DecodeEngineUnavailableError } from './errors';
import type { InferenceLogger } from './onnx-session';

/** Which decoder serves greedy rows: weft's onnxruntime graphs, or the PyTorch engine (trainer/decode_engine.py). */
export type DecodeEngineName = 'onnxruntime' | 'torch';

export interface TorchEngineOptions {
  /** A Python with torch and transformers: the trainer's (WEFT_PYTHON, default .venv/bin/python). */
  python: string;
  /** 'cpu' or 'cuda:N'. */
  device: string;
  /** How the CUDA decode step runs: 'triton' (default), 'default+cdt', 'default', 'off' (WEFT_TORCH_COMPILE). */
  compile?: string;
  logger?: InferenceLogger;
}

/** Greedy rows for one engine run: prompts left-padded together, each row with its own budget. */
export interface EngineRequest {
  prompts: number[][];
  maxNewTokens: number[];
  eosTokenIds: readonly number[];
  padTokenId: number;
}

export interface EngineRunSummary {
  steps: number;
  prefillMs: number;
  decodeMs: number;
}

export interface EngineReady {
  device: string;
  dtype: string;
  compile: string;
  /** The load-time comparison with transformers: max |logit difference|, same greedy choice, top-2 gap. */
  check: { max_abs_logit_diff: number; same_greedy_choice: boolean; top2_gap: number };
}

/** The repository root, where `python -m trainer.decode_engine` runs. */
const trainerRoot = path.resolve(__dirname, '..', '..');
const stderrTailCharacters = 4000;

/**
 * The Hugging Face weights of a model folder: `<folder>/hf` (model artifacts: ONNX at the root, HF under hf/) or
 * `<folder>/../hf` (setup's models folder: onnx/ and hf/ side by side).
 */
export function huggingFaceFolderOf(modelFolder: string): string | undefined {
  return [path.join(modelFolder, 'hf'), path.join(modelFolder, '..', 'hf')].find((folder) =>
    existsSync(path.join(folder, 'config.json')),
  );
}

interface Pending {
  onTokens: (tokens: number[][], rows: number) => void;
  resolve: (summary: EngineRunSummary) => void;
  reject: (error: Error) => void;
}

type Message =
  | ({ ready: true } & EngineReady)
  | { ready: false; error: string }
  | { id: number; tokens: number[][]; rows: number }
  | { id: number; done: true; steps: number; prefill_ms: number; decode_ms: number }
  | { id: number | null; error: string };

/**
 * One `python -m trainer.decode_engine` process serving one model: greedy rows in, tokens streamed back a chunk at
 * a time. Requests may be sent while others decode: the engine puts them into free rows of the running batch when
 * they fit (continuous batching), else runs them next. The process holds no event-loop reference while idle, so a
 * CLI exits when its work is done; it ends with the Node process.
 */
export class TorchDecodeEngine {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private stderrTail = '';
  private exited: string | undefined;
  ready: EngineReady | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly modelFolder: string,
  ) {}

  /** Starts the process and waits until it has loaded the weights and checked them against transformers. */
  static start(huggingFaceFolder: string, options: TorchEngineOptions): Promise<TorchDecodeEngine> {
    const args = ['-m', 'trainer.decode_engine', '--model', huggingFaceFolder, '--device', options.device];
    if (options.compile) args.push('--compile', options.compile);
    const child = spawn(options.python, args, {
      cwd: trainerRoot,
      env: trainerEnvironment(process.env, { HF_HUB_OFFLINE: '1', PYTHONUNBUFFERED: '1' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const engine = new TorchDecodeEngine(child, huggingFaceFolder);
    return new Promise<TorchDecodeEngine>((resolve, reject) => {
      const unavailable = (reason: string) => reject(new DecodeEngineUnavailableError(huggingFaceFolder, reason));
      child.on('error', (error: NodeJS.ErrnoException) => {
        engine.exited = error.message;
        unavailable(
          error.code === 'ENOENT'
            ? `no Python at ${options.python} (set WEFT_PYTHON to one with torch and transformers, or run bash scripts/setup.sh)`
            : error.message,
        );
      });
      // A request written as the process dies fails through 'close' below, not as an unhandled stream error.
      child.stdin?.on('error', () => undefined);
      // Whole lines (a chunk may end mid-line): the tail for error messages, the engine's own lines for the logger.
      readline.createInterface({ input: child.stderr! }).on('line', (line) => {
        engine.stderrTail = `${engine.stderrTail}${line}\n`.slice(-stderrTailCharacters);
        if (line.startsWith('[decode-engine] warning: ')) {
          options.logger?.warn(line.slice('[decode-engine] warning: '.length));
        } else if (line.startsWith('[decode-engine] ')) {
          options.logger?.info?.(line.slice('[decode-engine] '.length));
        }
      });
      // 'close', not 'exit': by then stderr has been read to its end, so the reason is in the tail.
      child.on('close', (code, signal) => {
        engine.exited = `the engine process exited (${signal ?? `code ${code}`})`;
        unavailable(`${engine.exited} while loading: ${engine.lastError()}`);
        for (const [id, pending] of engine.pending) {
          engine.pending.delete(id);
          pending.reject(new DecodeEngineRunError(huggingFaceFolder, `${engine.exited}: ${engine.lastError()}`));
        }
        engine.hold(false);
      });
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        let message: Message;
        try {
          message = JSON.parse(line) as Message;
        } catch {
          return; // a library's plain text on stdout; protocol lines are JSON
        }
        if ('ready' in message) {
          if (message.ready) {
            engine.ready = message;
            engine.hold(false);
            resolve(engine);
          } else unavailable(message.error);
          return;
        }
        engine.receive(message);
      });
      engine.hold(true);
    });
  }

  /** The engine process's id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the process is still there to take requests. */
  get alive(): boolean {
    return this.exited === undefined;
  }

  /**
   * Decodes the rows greedily. `onTokens` gets each chunk: one array of new tokens per row, all of the same length
   * (a row past its stop token or budget gets tokens the caller drops), and how many rows of the engine's batch,
   * these and other requests', were decoding. Resolves when every row has stopped. May be
   * called while other requests decode (they share the engine's batch where they fit).
   */
  generate(request: EngineRequest, onTokens: (tokens: number[][], rows: number) => void): Promise<EngineRunSummary> {
    if (this.exited !== undefined) {
      return Promise.reject(new DecodeEngineRunError(this.modelFolder, `${this.exited}: ${this.lastError()}`));
    }
    const id = this.nextId++;
    return new Promise<EngineRunSummary>((resolve, reject) => {
      this.pending.set(id, { onTokens, resolve, reject });
      this.hold(true);
      this.child.stdin!.write(
        `${JSON.stringify({
          id,
          prompts: request.prompts,
          max_new_tokens: request.maxNewTokens,
          eos: request.eosTokenIds,
          pad: request.padTokenId,
        })}\n`,
      );
    });
  }

  private receive(message: Exclude<Message, { ready: boolean }>): void {
    const pending = message.id === null ? undefined : this.pending.get(message.id);
    if (!pending) return;
    if ('tokens' in message) {
      try {
        pending.onTokens(message.tokens, message.rows);
      } catch (error) {
        // The caller's callback failed: this request fails, the engine finishes the run and goes on serving.
        pending.reject(error as Error);
        pending.onTokens = () => undefined;
        pending.resolve = () => undefined;
      }
      return;
    }
    this.pending.delete(message.id as number);
    if (this.pending.size === 0) this.hold(false);
    if ('error' in message) pending.reject(new DecodeEngineRunError(this.modelFolder, message.error));
    else pending.resolve({ steps: message.steps, prefillMs: message.prefill_ms, decodeMs: message.decode_ms });
  }

  /** Keeps the Node process alive while the engine loads or decodes; lets it exit while the engine is idle. */
  private hold(busy: boolean): void {
    const handles = [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as Array<{
      ref?: () => void;
      unref?: () => void;
    } | null>;
    for (const handle of handles) (busy ? handle?.ref : handle?.unref)?.call(handle);
  }

  private lastError(): string {
    const lines = this.stderrTail.trim().split('\n');
    return lines.slice(-6).join('\n') || 'no error output';
  }

  /** Ends the process (pending requests fail). */
  close(): void {
    if (this.exited === undefined) this.child.kill('SIGTERM');
  }
}

const engines = new Map<string, Promise<TorchDecodeEngine>>();

/**
 * The process's engine for a model folder on a device: started once, shared by every runtime of the same weights,
 * and started again when its process has died (a crash fails the rows decoding then, not every later request).
 */
export async function torchDecodeEngine(modelFolder: string, options: TorchEngineOptions): Promise<TorchDecodeEngine> {
  const huggingFaceFolder = huggingFaceFolderOf(modelFolder);
  if (huggingFaceFolder === undefined) {
    throw new DecodeEngineUnavailableError(
      modelFolder,
      'it has no Hugging Face weights (hf/config.json inside or beside the ONNX folder); log the model with its hf/ ' +
        'folder, or use WEFT_ENGINE=onnxruntime.',
    );
  }
  const key = `${path.resolve(huggingFaceFolder)}|${options.device}|${options.compile ?? ''}`;
  const existing = engines.get(key);
  if (existing !== undefined) {
    const engine = await existing.catch(() => undefined);
    if (engine?.alive) return engine;
    engines.delete(key);
  }
  return loadOnce(engines, key, () => TorchDecodeEngine.start(huggingFaceFolder, options));
}

/** Ends every engine process of this process (worker shutdown, tests). */
export async function closeTorchDecodeEngines(): Promise<void> {
  const started = [...engines.values()];
  engines.clear();
  for (const starting of started) (await starting.catch(() => undefined))?.close();
}
