import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { trainerEnvironment } from '../../lib/common/child-environment';
import { startWorkerProcess } from '../../lib/temporal/stack';
import { temporalCliForTests } from '../support/temporal';
import { waitFor } from '../support/wait';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('worker processes under faults (finding 1, finding 7)', () => {
  let environment: TestWorkflowEnvironment;

  beforeAll(async () => {
    environment = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: temporalCliForTests() } },
    });
  });

  afterAll(async () => {
    await environment?.teardown();
  });

  it('a full disk under the worker log stops the log, not the caller; the worker gets no serve token', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-worker-faults-'));
    fs.mkdirSync(path.join(home, 'logs'));
    // Every write to /dev/full fails with ENOSPC: the disk-full case without filling a disk.
    fs.symlinkSync('/dev/full', path.join(home, 'logs', 'registry-worker.log'));
    const lines: string[] = [];
    const worker = await startWorkerProcess('registry', {
      home,
      environment: { TEMPORAL_ADDRESS: environment.address, WEFT_SERVE_TOKEN: 'serve-secret' },
      onLine: (_kind, line) => lines.push(line),
    });
    try {
      await waitFor('the log failure to be reported', async () =>
        lines.find((line) => line.includes('cannot write') && line.includes('ENOSPC')),
      );
      expect(worker.process.exitCode).toBeNull();
      const workerEnvironment = fs.readFileSync(`/proc/${worker.process.pid}/environ`, 'utf8').split('\0');
      expect(workerEnvironment.some((entry) => entry.startsWith('WEFT_SERVE_TOKEN='))).toBe(false);
      expect(workerEnvironment).toContain(`TEMPORAL_ADDRESS=${environment.address}`);
    } finally {
      await worker.stop();
    }
    expect(worker.process.exitCode !== null || worker.process.signalCode !== null).toBe(true);
  });

  it('a worker whose parent is killed (SIGKILL, no cleanup ran) shuts itself down', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-worker-orphan-'));
    const script = path.join(home, 'parent.ts');
    fs.writeFileSync(
      script,
      `import { startWorkerProcess } from ${JSON.stringify(path.resolve(__dirname, '../../lib/temporal/stack'))};\n` +
        `startWorkerProcess('registry', { home: ${JSON.stringify(home)}, environment: { TEMPORAL_ADDRESS: ${JSON.stringify(environment.address)} } })\n` +
        `  .then((worker) => process.stdout.write(\`worker \${worker.process.pid}\\n\`));\n` +
        `setInterval(() => undefined, 1000);\n`,
    );
    const parent = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    parent.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const workerPid = await waitFor('the worker to be ready', async () => {
      const match = /worker (\d+)/.exec(output);
      return match ? Number(match[1]) : undefined;
    });
    expect(alive(workerPid)).toBe(true);
    parent.kill('SIGKILL');
    try {
      await waitFor('the orphaned worker to exit', async () => (alive(workerPid) ? undefined : true), 60_000);
    } finally {
      if (alive(workerPid)) process.kill(workerPid, 'SIGKILL');
    }
  });

  it('the trainer gets no secret: no serve token, Temporal API key or other credential', () => {
    const child = trainerEnvironment(
      {
        PATH: '/usr/bin',
        WEFT_HOME: '/data/weft',
        CUDA_VISIBLE_DEVICES: '0',
        WEFT_SERVE_TOKEN: 'serve-secret',
        TEMPORAL_API_KEY: 'temporal-secret',
        TEMPORAL_ADDRESS: 'cloud:7233',
        WEFT_VECTOR_API_KEY: 'qdrant-secret',
        HF_TOKEN: 'hf-secret',
        WEFT_LINEAGE_URL: 'postgres://weft:password@db/weft',
      },
      { PYTHONUNBUFFERED: '1' },
    );
    expect(child).toEqual({
      PATH: '/usr/bin',
      WEFT_HOME: '/data/weft',
      CUDA_VISIBLE_DEVICES: '0',
      PYTHONUNBUFFERED: '1',
    });
  });
});
