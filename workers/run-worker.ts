import os from 'node:os';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { loadConfig, type WeftConfig } from '../lib/config/config';
import { temporalTarget, unreachableMessage } from '../lib/temporal/connection';
import { workerReadyMarker, type WorkerKind } from '../lib/temporal/stack';

export interface WorkerContext {
  config: WeftConfig;
  /** `host:pid`, recorded by activities so a user can see which process ran a step. */
  workerName: string;
  /** The Temporal logger, for adapters that report (CUDA fallback, model loading). */
  logger: {
    info(message: string, meta?: Record<string, unknown>): void;
    warn(message: string, meta?: Record<string, unknown>): void;
  };
  /** Registers cleanup (close stores, release model sessions) to run after the worker has drained. */
  onShutdown(cleanup: () => Promise<void>): void;
}

type WorkerSpecification = Omit<WorkerOptions, 'connection' | 'namespace'>;

/**
 * The composition root every worker process shares: config parsed once, the Temporal logger,
 * the connection from the standard TEMPORAL_* variables, a clear message and exit code 1 when the
 * server cannot be reached, and a clean shutdown on SIGINT/SIGTERM (the Temporal runtime's default).
 */
export async function runWorkerProcess(
  kind: WorkerKind,
  specify: (context: WorkerContext) => WorkerSpecification | Promise<WorkerSpecification>,
): Promise<void> {
  const config = loadConfig();
  Runtime.install({ logger: new DefaultLogger(config.logLevel) });
  const logger = Runtime.instance().logger;
  const target = temporalTarget();
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(target.connectionOptions);
  } catch (error) {
    logger.error(unreachableMessage(target, error), { worker: kind });
    process.stderr.write(`weft ${kind} worker: ${unreachableMessage(target, error)}\n`);
    process.exitCode = 1;
    return;
  }
  const cleanups: (() => Promise<void>)[] = [];
  // Started by `weft up` or another weft command (an IPC channel): when that parent dies, however it dies
  // (crash, full disk, SIGKILL), the channel closes and this worker shuts down cleanly instead of running orphaned.
  const onParentGone = () => {
    logger.warn(`weft ${kind} worker: the process that started it is gone; shutting down`);
    process.kill(process.pid, 'SIGTERM');
  };
  if (process.channel) {
    process.once('disconnect', onParentGone);
    process.channel.unref();
  }
  try {
    const context: WorkerContext = {
      config,
      workerName: `${os.hostname()}:${process.pid}`,
      logger: {
        info: (message, meta) => logger.info(message, meta),
        warn: (message, meta) => logger.warn(message, meta),
      },
      onShutdown: (cleanup) => cleanups.push(cleanup),
    };
    const specification = await specify(context);
    const worker = await Worker.create({ ...specification, connection, namespace: target.namespace });
    logger.info(`weft ${kind} worker polling`, { taskQueue: specification.taskQueue, address: target.address });
    const running = worker.run();
    // Printed once run() has started polling, so `weft up` never reports a queue nobody serves.
    process.stdout.write(`${workerReadyMarker} ${kind} ${specification.taskQueue}\n`);
    await running;
  } finally {
    process.off('disconnect', onParentGone);
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((error: unknown) => logger.warn(`cleanup failed: ${String(error)}`));
    await connection.close();
  }
}

/** Entry-point wrapper: any failure is printed for a person and ends the process with status 1. */
export function main(run: () => Promise<void>): void {
  run().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
