/**
 * `weft doctor` on the Temporal server TEMPORAL_ADDRESS names (a real dev server here; test/cluster runs it against
 * the PostgreSQL cluster): each missing piece fails with the exact `temporal operator` command that fixes it, and
 * running those commands makes it pass.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal/dev-server';
import { startWorkerProcess, type WorkerProcess } from '../../lib/temporal/stack';
import { runWeft } from '../support/cli';
import { temporalCliForTests } from '../support/temporal';
import { waitFor } from '../support/wait';

interface Check {
  name: string;
  status: string;
  detail: string;
  commands?: string[];
}

const run = promisify(execFile);

describe('weft doctor checks a remote Temporal server', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-doctor-temporal-'));
  let server: DevServer;
  let worker: WorkerProcess | undefined;

  beforeAll(async () => {
    server = await startDevServer({ home, port: await freePort(), uiPort: await freePort() });
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await server?.stop();
  });

  async function doctor(environment: NodeJS.ProcessEnv) {
    const result = await runWeft(['doctor', '--only', 'temporal', '--json'], { WEFT_HOME: home, ...environment });
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: Check[] };
    return { code: result.code, report, byName: Object.fromEntries(report.checks.map((check) => [check.name, check])) };
  }

  /** Runs a printed `temporal …` command with the CLI setup installed, as a person would paste it. */
  async function runPrinted(command: string) {
    const [program, ...args] = command.split(' ');
    expect(program).toBe('temporal');
    await run(temporalCliForTests(), args);
  }

  it('names the missing namespace and search attributes with the commands that register them; then passes', async () => {
    const environment = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'weft-doctor' };
    const noNamespace = await doctor(environment);
    expect(noNamespace.code).toBe(1);
    expect(noNamespace.byName.temporal.status).toBe('ok');
    expect(noNamespace.byName.namespace).toMatchObject({
      status: 'fail',
      commands: [
        `temporal operator namespace create --address ${server.address} --namespace weft-doctor --retention 72h`,
      ],
    });
    await runPrinted(noNamespace.byName.namespace.commands![0]);

    // A namespace registered a moment ago reaches the frontend's cache within seconds.
    const noAttributes = await waitFor('the new namespace to be served', async () => {
      const report = await doctor(environment);
      return report.byName['search-attributes'] ? report : undefined;
    });
    expect(noAttributes.code).toBe(1);
    expect(noAttributes.byName.namespace.status).toBe('ok');
    const attributes = noAttributes.byName['search-attributes'];
    expect(attributes.status).toBe('fail');
    expect(attributes.detail).toMatch(/missing WeftStage, WeftApp, WeftChatModelVersion, WeftGateDecision, WeftScore/);
    expect(attributes.commands).toHaveLength(6);
    for (const command of attributes.commands!) await runPrinted(command);

    const noPollers = await doctor(environment);
    expect(noPollers.code).toBe(0);
    expect(noPollers.byName['search-attributes'].status).toBe('ok');
    expect(noPollers.byName['task-queues'].status).toBe('warn');
    expect(noPollers.byName['task-queues'].detail).toMatch(/nothing polls weft-pipeline, weft-gpu, weft-registry/);

    worker = await startWorkerProcess('registry', { home, environment });
    const onePoller = await doctor(environment);
    expect(onePoller.byName['task-queues'].detail).toMatch(/weft-registry: 1 registry worker\(s\)/);
    expect(onePoller.byName['task-queues'].detail).toMatch(/nothing polls weft-pipeline, weft-gpu:/);
  }, 180_000);

  it('fails on an address where nothing answers, saying what to check; refuses an unknown --only', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const down = await doctor({ TEMPORAL_ADDRESS: address });
    expect(down.code).toBe(1);
    expect(down.report.checks).toEqual([
      expect.objectContaining({
        name: 'temporal',
        status: 'fail',
        detail: expect.stringContaining(`Cannot connect to Temporal at ${address}`),
      }),
    ]);
    const bad = await runWeft(['doctor', '--only', 'temporal,gpus'], { WEFT_HOME: home });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /--only takes a comma-separated list of models, temporal-cli, inference, trainer, temporal, workers; got 'gpus'/,
    );
  }, 60_000);
});
