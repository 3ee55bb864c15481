import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { openLineageStore, type LineageStore } from '../../../lib/lineage';
import { runWeft, type CliResult } from '../../support/cli';
import { createTestLocation, type TestLocation } from '../../lineage/support/test-backends';
import { killProcess } from '../../weave/support/weave-server-fixture';

const ROOT = path.resolve(__dirname, '..', '..', '..');
/** The wandb SDK refuses API keys under 40 characters (and reads text before a "-" as a host prefix): 40+ plain characters. */
export const WANDB_TOKEN = 'weftwandbtesttoken0123456789abcdef0123456789';
export const SDK_PYTHON = path.join(ROOT, '.venv-sdk', 'bin', 'python');
export const SCRIPTS = path.join(__dirname, '..', 'python');

/** The W&B SDK tests need the pinned SDKs; without them they fail (never skip) and say how to install them. */
export function requireSdkVenv(): void {
  const probe = fs.existsSync(SDK_PYTHON)
    ? spawnSync(SDK_PYTHON, ['-c', 'import wandb, weave; print(wandb.__version__, weave.__version__)'], {
        encoding: 'utf8',
      })
    : undefined;
  if (probe?.status !== 0 || probe.stdout.trim() !== '0.31.0 0.54.0') {
    throw new Error(
      `The W&B SDK venv (.venv-sdk with wandb 0.31.0 and weave 0.54.0) is missing or different${probe ? `: ${probe.stdout}${probe.stderr}` : ''}. Run: bash scripts/setup-wandb-sdks.sh`,
    );
  }
}

export interface WandbServeFixture {
  location: TestLocation;
  url: string;
  child: ChildProcess;
  /** The same lineage store, opened in the test's process for reading back. */
  store: LineageStore;
  /** The server's stderr so far (one line per rejected request). */
  log(): string;
  /** Stops the server (its store stays); `restart` starts it again on the same store, at a new URL. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  weft(args: string[]): Promise<CliResult>;
  /** Runs a Python script in .venv-sdk with only the W&B environment variables pointing at this server ('' unsets one). */
  python(script: string, environment?: Record<string, string>): Promise<PythonRun>;
  dispose(): Promise<void>;
}

export interface PythonRun {
  code: number | null;
  output: string;
  /** The JSON after the script's `RESULT ` line. */
  result: Record<string, unknown>;
}

/** Starts `bin/weft serve` on a location; resolves once it listens, with its URL. */
function spawnServe(
  location: TestLocation,
  onStderr: (text: string) => void,
): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const spawned = spawn(path.join(ROOT, 'bin', 'weft'), ['serve', '--port', '0'], {
      cwd: ROOT,
      env: {
        ...process.env,
        WEFT_HOME: location.folder,
        WEFT_LINEAGE_URL: location.url,
        WEFT_SERVE_TOKEN: WANDB_TOKEN,
        WEFT_ENTITY: 'weft',
        WEFT_PROJECT: 'rag-demo',
        WEFT_ORG: 'weft',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    spawned.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const match = /Weave trace server on (http:\/\/[^\s]+)/.exec(stdout);
      if (match) resolve({ child: spawned, url: match[1]! });
    });
    spawned.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      onStderr(chunk.toString('utf8'));
    });
    spawned.once('exit', (code) => reject(new Error(`weft serve exited with ${code} before listening:\n${stderr}`)));
  });
}

/** `bin/weft serve` (the real command, its own process) on a fresh SQLite WEFT_HOME. */
export async function startWandbServe(): Promise<WandbServeFixture> {
  const location = await createTestLocation('sqlite');
  let stderr = '';
  const started = await spawnServe(location, (text) => (stderr += text));
  const store = await openLineageStore(location.url, { blobDirectory: location.blobDirectory });
  const sandbox = path.join(location.folder, 'python');
  const fixture: WandbServeFixture = {
    location,
    url: started.url,
    child: started.child,
    store,
    stop: async () => {
      await killProcess(fixture.child);
    },
    restart: async () => {
      const again = await spawnServe(location, (text) => (stderr += text));
      fixture.child = again.child;
      fixture.url = again.url;
    },
    log: () => stderr,
    weft: (args) => runWeft(args, { WEFT_HOME: location.folder, WEFT_LINEAGE_URL: location.url, WEFT_ORG: 'weft' }),
    python: (script, environment = {}) => {
      const home = path.join(sandbox, `home-${Date.now()}`);
      fs.mkdirSync(home, { recursive: true });
      // A clean environment: nothing from the developer's own W&B setup (~/.netrc, WANDB_*) leaks in.
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        WANDB_BASE_URL: fixture.url,
        WANDB_API_KEY: WANDB_TOKEN,
        WF_TRACE_SERVER_URL: fixture.url,
        WEAVE_PRINT_CALL_LINK: 'false',
        WANDB_ERROR_REPORTING: 'false',
        WANDB_DIR: path.join(home, 'wandb'),
        WANDB_CONFIG_DIR: path.join(home, 'config'),
        WANDB_CACHE_DIR: path.join(home, 'cache'),
        WANDB_DATA_DIR: path.join(home, 'data'),
        WEAVE_SERVER_CACHE_DIR: path.join(home, 'weave-cache'),
        ...environment,
      };
      // An empty value unsets a variable (e.g. WF_TRACE_SERVER_URL, to let weave derive it from WANDB_BASE_URL).
      for (const [name, value] of Object.entries(env)) if (value === '') delete env[name];
      fs.mkdirSync(env.WANDB_DIR!, { recursive: true });
      return new Promise((resolve, reject) => {
        const run = spawn(SDK_PYTHON, [path.join(SCRIPTS, script)], {
          cwd: home,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        run.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
        run.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
        run.once('error', reject);
        run.once('exit', (code) => {
          const line = output.split('\n').find((text) => text.startsWith('RESULT '));
          resolve({
            code,
            output,
            result: line ? (JSON.parse(line.slice('RESULT '.length)) as Record<string, unknown>) : {},
          });
        });
      });
    },
    dispose: async () => {
      await killProcess(fixture.child);
      await store.close();
      await location.dispose();
    },
  };
  return fixture;
}

/** POSTs GraphQL to the server as the SDKs do (basic auth `api:<token>`). */
export async function graphqlRequest(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token: string = WANDB_TOKEN,
): Promise<{ status: number; body: { data?: Record<string, unknown> | null; errors?: { message: string }[] } }> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`api:${token}`).toString('base64')}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as never };
}
