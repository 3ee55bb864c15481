import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { workerEnvironment } from '../common/child-environment';
import { projectRoot } from '../config/config';
import { pollersByKind } from './cluster-check';
import { temporalTarget, unreachableMessage, type TemporalTarget } from './connection';
import { startDevServer, stopProcess, type DevServer } from './dev-server';

export type WorkerKind = 'orchestrator' | 'gpu' | 'registry';
export const workerKinds: WorkerKind[] = ['orchestrator', 'gpu', 'registry'];

/** Printed on stdout by a worker process once it polls its queue (workers/run-worker.ts); startWorkerProcess waits for it. */
export const workerReadyMarker = 'weft-worker-ready';

export class StackError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'StackError';
  }
}

export interface WorkerProcess {
  kind: WorkerKind;
  process: ChildProcess;
  logFile: string;
  /** How it was started: a restart starts it again the same way. */
  options: StartWorkerOptions;
  stop(graceMilliseconds?: number): Promise<void>;
}

export interface StartWorkerOptions {
  home: string;
  /** Distinguishes several workers of one kind on a host (log file `gpu-1-worker.log`). */
  instance?: string;
  /** Extra environment for the worker (TEMPORAL_ADDRESS of the embedded server, WEFT_* overrides). */
  environment?: NodeJS.ProcessEnv;
  /** Called with each line the worker prints (for `weft up`'s console); lines always go to the log file. */
  onLine?: (kind: WorkerKind, line: string) => void;
  readyTimeoutMilliseconds?: number;
  /** Run the worker in a process group of its own (a "host": SIGKILL to the group takes its trainer with it). */
  ownProcessGroup?: boolean;
}

/**
 * Starts one worker process (workers/<kind>.ts through tsx) and waits until it polls its queue.
 * The worker's log is best effort: a full disk stops the log (said once on `onLine`), never the caller.
 * An IPC channel ties the worker's life to its parent: when the parent dies, however, the worker shuts down.
 */
export function startWorkerProcess(kind: WorkerKind, options: StartWorkerOptions): Promise<WorkerProcess> {
  const logDirectory = path.join(options.home, 'logs');
  fs.mkdirSync(logDirectory, { recursive: true });
  const logFile = path.join(logDirectory, `${kind}${options.instance ? `-${options.instance}` : ''}-worker.log`);
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  let logBroken = false;
  log.on('error', (error: NodeJS.ErrnoException) => {
    if (logBroken) return;
    logBroken = true;
    options.onLine?.(
      kind,
      `weft: cannot write ${logFile} (${error.code ?? error.message}); this worker's log stops here`,
    );
  });
  const child = spawn(
    process.execPath,
    ['--require', require.resolve('tsx/cjs'), path.join(projectRoot, 'workers', `${kind}.ts`)],
    {
      env: workerEnvironment(process.env, { ...options.environment, WEFT_HOME: options.home }),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: options.ownProcessGroup ?? false,
    },
  );
  // The channel must not keep this process alive; the worker still sees it close when this process exits.
  child.channel?.unref();
  const recentLines: string[] = [];
  return new Promise((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new StackError(`The ${kind} worker did not start within the time allowed; see ${logFile}.`));
    }, options.readyTimeoutMilliseconds ?? 120_000);
    const onData = (chunk: Buffer) => {
      if (!logBroken) log.write(chunk);
      for (const line of chunk
        .toString('utf8')
        .split('\n')
        .filter((text) => text.trim() !== '')) {
        recentLines.push(line);
        if (recentLines.length > 20) recentLines.shift();
        options.onLine?.(kind, line);
        if (!ready && line.startsWith(workerReadyMarker)) {
          ready = true;
          clearTimeout(timer);
          resolve({ kind, process: child, logFile, options, stop: (grace) => stopProcess(child, grace) });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    // Every stream of the child has a handler: an error on one is reported, never an unhandled 'error' event.
    for (const stream of [child.stdout!, child.stderr!]) stream.on('error', () => undefined);
    child.on('error', (error) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new StackError(`The ${kind} worker could not be started: ${error.message}`));
      } else options.onLine?.(kind, `weft: ${kind} worker process error: ${error.message}`);
    });
    child.once('exit', (code, signal) => {
      log.end();
      if (!ready) {
        clearTimeout(timer);
        reject(
          new StackError(
            `The ${kind} worker exited before it was ready (${signal ?? `code ${code}`}):\n${recentLines.join('\n')}`,
          ),
        );
      }
    });
  });
}

export interface RunningStack {
  address: string;
  namespace: string;
  /** The Web UI, when weft started the server (a remote server's UI is the user's to know). */
  uiUrl: string | undefined;
  server: DevServer | undefined;
  workers: WorkerProcess[];
  /** Stops what this call started (workers first, then the server), leaving anything it found running. */
  stop(): Promise<void>;
  /** Sends SIGTERM to everything this call started, synchronously: for `process.on('exit')`, where nothing can wait. */
  signalAll(): void;
}

export interface EnsureStackOptions {
  home: string;
  /** Start the embedded server even if nothing needs it yet (`weft up`). */
  port?: number;
  uiPort?: number;
  onLine?: (kind: WorkerKind, line: string) => void;
  /** GPU ordinals to start one gpu worker each for (a pool on a multi-GPU host); default one gpu worker. */
  gpuDevices?: number[];
  /** Progress messages for people ("starting the embedded Temporal server…"). */
  onStatus?: (message: string) => void;
}

/** True when the Temporal server answers a system-info call within a second and a half. */
export async function reachable(target: TemporalTarget): Promise<boolean> {
  try {
    const connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: 1500 });
    try {
      await connection.workflowService.getSystemInfo({});
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

/** Worker kinds with no poller on their queue right now. */
async function kindsWithoutPollers(target: TemporalTarget): Promise<WorkerKind[]> {
  const connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: 3000 });
  try {
    const pollers = await pollersByKind(connection, target.namespace);
    return workerKinds.filter((kind) => pollers[kind].length === 0);
  } finally {
    await connection.close();
  }
}

/**
 * Makes sure a Temporal server and all three worker kinds are there. A reachable server is used
 * as it is; when none is reachable and the user named none (TEMPORAL_ADDRESS unset), the embedded
 * dev server is started. Worker kinds that no process serves are started here. `stop()` undoes
 * exactly what was started, so `weft demo` from a cold start leaves nothing running.
 */
export async function ensureStack(options: EnsureStackOptions): Promise<RunningStack> {
  const target = temporalTarget();
  let server: DevServer | undefined;
  let address = target.address;
  if (!(await reachable(target))) {
    if (target.explicit) throw new StackError(unreachableMessage(target, new Error('no answer')));
    const [host, portText] = target.address.split(':');
    options.onStatus?.('Starting the embedded Temporal server…');
    server = await startDevServer({
      home: options.home,
      host,
      port: options.port ?? Number(portText),
      uiPort: options.uiPort,
      namespace: target.namespace,
    });
    address = server.address;
  }
  const workers: WorkerProcess[] = [];
  const stop = async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await server?.stop();
  };
  try {
    const missing = server ? workerKinds : await kindsWithoutPollers({ ...target, address });
    if (missing.length > 0) options.onStatus?.(`Starting workers: ${missing.join(', ')}…`);
    // One gpu worker per listed device (each pinned to its GPU through WEFT_CUDA_DEVICE_ID), else one.
    const launches = missing.flatMap((kind): { kind: WorkerKind; instance?: string; device?: string }[] =>
      kind === 'gpu' && options.gpuDevices && options.gpuDevices.length > 0
        ? options.gpuDevices.map((device) => ({ kind, instance: String(device), device: String(device) }))
        : [{ kind }],
    );
    const started = await Promise.allSettled(
      launches.map(({ kind, instance, device }) =>
        startWorkerProcess(kind, {
          home: options.home,
          instance,
          environment: {
            TEMPORAL_ADDRESS: address,
            TEMPORAL_NAMESPACE: target.namespace,
            ...(device === undefined ? {} : { WEFT_CUDA_DEVICE_ID: device }),
          },
          onLine: options.onLine,
        }),
      ),
    );
    for (const result of started) if (result.status === 'fulfilled') workers.push(result.value);
    const failure = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure) throw failure.reason;
  } catch (error) {
    await stop();
    throw error;
  }
  // A server found at the default address is most likely `weft up`, whose UI is on its default port.
  const uiUrl = server?.uiUrl ?? (target.explicit ? undefined : `http://127.0.0.1:${options.uiPort ?? 8233}`);
  const signalAll = () => {
    for (const child of [...workers.map((worker) => worker.process), server?.process]) {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
  };
  return { address, namespace: target.namespace, uiUrl, server, workers, stop, signalAll };
}
