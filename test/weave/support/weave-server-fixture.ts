import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { openLineageStore, type LineageStore } from '../../../lib/lineage';
import { startWeaveServer, type RunningWeaveServer } from '../../../lib/weave-server';
import { runWeft, type CliResult } from '../../support/cli';
import { createTestLocation, type BackendName } from '../../lineage/support/test-backends';

export const TEST_TOKEN = 'weft-test-token-0123456789';

export interface WeaveServerFixture {
  folder: string;
  lineageUrl: string;
  store: LineageStore;
  server: RunningWeaveServer;
  /** Runs `bin/weft` against the same store. */
  weft(args: string[]): Promise<CliResult>;
  dispose(): Promise<void>;
}

/** A fresh lineage store (SQLite by default, or a new PostgreSQL schema) with `weft serve` in this process on a free port. */
export async function startFixture(backend: BackendName = 'sqlite'): Promise<WeaveServerFixture> {
  const location = await createTestLocation(backend);
  // The CLI finds PostgreSQL's blobs under WEFT_HOME/blobs: the same folder the server's store writes to.
  const store = await openLineageStore(location.url, { blobDirectory: location.blobDirectory });
  const server = await startWeaveServer({ store, token: TEST_TOKEN, port: 0 });
  return {
    folder: location.folder,
    lineageUrl: location.url,
    store,
    server,
    weft: (args) => runWeft(args, { WEFT_HOME: location.folder, WEFT_LINEAGE_URL: location.url }),
    dispose: async () => {
      await server.close();
      await store.close();
      await location.dispose();
    },
  };
}

/** Parses `--json` output of the CLI, failing with its stderr when the command failed. */
export function parseCliJson<T>(result: CliResult): T {
  if (result.code !== 0) throw new Error(`weft exited with ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  port: number;
}

const serveScript = path.join(__dirname, 'serve-process.ts');

/** Starts `weft serve` as a child process over `lineageUrl` and resolves once it prints its URL. */
export function spawnServe(lineageUrl: string, home: string, port = 0): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', serveScript, 'serve', '--port', String(port)], {
      cwd: path.resolve(__dirname, '..', '..', '..'),
      env: { ...process.env, WEFT_HOME: home, WEFT_LINEAGE_URL: lineageUrl, WEFT_SERVE_TOKEN: TEST_TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const match = /Weave trace server on (http:\/\/[^\s]+)/.exec(output);
      if (match) {
        child.stdout.off('data', onData);
        resolve({ child, url: match[1]!, port: Number(new URL(match[1]!).port) });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('exit', (code) => reject(new Error(`weft serve exited with ${code} before listening:\n${output}`)));
  });
}

/** SIGKILLs a child and waits until it is gone. */
export function killProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const WEAVE_VARIABLES = ['WF_TRACE_SERVER_URL', 'WANDB_API_KEY', 'WEAVE_PRINT_CALL_LINK'] as const;

/** Points the weave SDK in this process at a server; returns the function that puts the environment back. */
export function pointWeaveAt(url: string, apiKey: string | undefined = TEST_TOKEN): () => void {
  const saved = Object.fromEntries(WEAVE_VARIABLES.map((name) => [name, process.env[name]]));
  process.env.WF_TRACE_SERVER_URL = url;
  if (apiKey !== undefined) process.env.WANDB_API_KEY = apiKey;
  process.env.WEAVE_PRINT_CALL_LINK = 'false';
  return () => {
    for (const name of WEAVE_VARIABLES) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  };
}
