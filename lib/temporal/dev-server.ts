import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { weftSearchAttributeDefinitions } from '../../workflows/contracts/search-attributes';
import { findTemporalCli } from './temporal-cli';

export interface DevServerOptions {
  /** WEFT_HOME: the server's SQLite file (`temporal.db`) and log live there, so state survives a restart. */
  home: string;
  host?: string;
  /** gRPC frontend port (default 7233). */
  port?: number;
  /** Web UI port (default 8233). */
  uiPort?: number;
  namespace?: string;
  /** How long to wait for the server to answer health checks, in milliseconds. */
  startTimeoutMilliseconds?: number;
}

export interface DevServer {
  address: string;
  uiUrl: string;
  databaseFile: string;
  logFile: string;
  process: ChildProcess;
  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
  stop(graceMilliseconds?: number): Promise<void>;
}

export class DevServerStartError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'DevServerStartError';
  }
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(host: string, port: number, timeoutMilliseconds = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const finish = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMilliseconds, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** A port the OS considers free right now (for tests that run servers side by side). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once the frontend answers a real RPC (not just an open port). */
export async function waitForTemporal(address: string, timeoutMilliseconds: number, isAlive = () => true) {
  const deadline = Date.now() + timeoutMilliseconds;
  let lastError: unknown;
  while (Date.now() < deadline && isAlive()) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw lastError ?? new Error('server exited');
}

function processExited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Stops a child process: SIGTERM, then SIGKILL after the grace period. */
export async function stopProcess(child: ChildProcess, graceMilliseconds = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMilliseconds);
  await processExited(child);
  clearTimeout(timer);
}

/**
 * Starts `temporal server start-dev` with a persistent SQLite file, the Web UI, and weft's custom
 * search attributes registered, and waits until it answers.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const address = `${host}:${port}`;
  if (await isPortOpen(host, port)) {
    throw new DevServerStartError(
      `Port ${port} on ${host} is already in use, so the embedded Temporal server cannot start there. ` +
        `Stop what listens there, or point weft at it with TEMPORAL_ADDRESS=${address} if it is a Temporal server.`,
    );
  }
  const cli = findTemporalCli();
  fs.mkdirSync(options.home, { recursive: true });
  const databaseFile = path.join(options.home, 'temporal.db');
  const logFile = path.join(options.home, 'temporal-server.log');
  const log = fs.openSync(logFile, 'a');
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--db-filename',
    databaseFile,
    '--namespace',
    options.namespace ?? 'default',
    '--log-level',
    'warn',
    ...Object.entries(weftSearchAttributeDefinitions).flatMap(([name, type]) => [
      '--search-attribute',
      `${name}=${type}`,
    ]),
  ];
  const child = spawn(cli, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exitCode: number | null = null;
  child.once('exit', (code) => {
    exitCode = code ?? -1;
  });
  try {
    await waitForTemporal(address, options.startTimeoutMilliseconds ?? 60_000, () => exitCode === null);
  } catch (error) {
    await stopProcess(child, 2000);
    const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
    throw new DevServerStartError(
      `The Temporal dev server (${cli}) did not become healthy at ${address}` +
        `${exitCode !== null ? ` — it exited with code ${exitCode}` : ''}: ${error instanceof Error ? error.message : String(error)}.\n` +
        `Last lines of ${logFile}:\n${tail}`,
    );
  }
  return {
    address,
    uiUrl: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${uiPort}`,
    databaseFile,
    logFile,
    process: child,
    stop: (graceMilliseconds = 10_000) => stopProcess(child, graceMilliseconds),
  };
}
