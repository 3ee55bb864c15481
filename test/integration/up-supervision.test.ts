import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../lib/temporal/dev-server';
import { runWeft } from '../support/cli';
import { waitFor } from '../support/wait';
import type { UpStatus } from '../../lib/temporal/supervisor';

/**
 * `weft up` watches what it started: a SIGKILLed worker is restarted (with backoff, said on stderr) and a run
 * completes afterwards; a dead Temporal server is reported; `weft doctor` shows both.
 */

const weftBin = path.resolve(__dirname, '..', '..', 'bin', 'weft');

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface DoctorCheck {
  name: string;
  status: string;
  detail: string;
}

describe('weft up supervises its children (#21)', () => {
  let home: string;
  let environment: NodeJS.ProcessEnv;
  let up: ChildProcess;
  let stderr = '';

  const status = (): UpStatus => JSON.parse(fs.readFileSync(path.join(home, 'up.json'), 'utf8')) as UpStatus;
  const doctor = async (): Promise<{ code: number | null; checks: Record<string, DoctorCheck> }> => {
    const result = await runWeft(['doctor', '--json'], environment);
    const report = JSON.parse(result.stdout) as { checks: DoctorCheck[] };
    return { code: result.code, checks: Object.fromEntries(report.checks.map((check) => [check.name, check])) };
  };

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-up-supervision-'));
    environment = {
      WEFT_HOME: home,
      WEFT_TEMPORAL_PORT: String(await freePort()),
      WEFT_UI_PORT: String(await freePort()),
      WEFT_EXECUTION_PROVIDER: 'cpu',
    };
    const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TEMPORAL_')));
    up = spawn(weftBin, ['up', '--json'], { env: { ...base, ...environment }, stdio: ['ignore', 'pipe', 'pipe'] });
    up.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    await new Promise<void>((resolve, reject) => {
      let stdout = '';
      up.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        if (stdout.includes('\n')) resolve();
      });
      up.once('exit', (code) => reject(new Error(`weft up exited (${code}) before it was up:\n${stderr}`)));
    });
  }, 240_000);

  afterAll(async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      const gone = new Promise((resolve) => up.once('exit', resolve));
      up.kill('SIGTERM');
      await gone;
    }
  }, 60_000);

  it('restarts a SIGKILLed worker, logs it, and a run still completes; doctor shows the restart', async () => {
    const before = status();
    expect(before.workers.map((worker) => worker.kind).sort()).toEqual(['gpu', 'orchestrator', 'registry']);
    const gpu = before.workers.find((worker) => worker.kind === 'gpu')!;
    process.kill(gpu.pid!, 'SIGKILL');

    const after = await waitFor(
      'the gpu worker to be restarted',
      async () => {
        const entry = status().workers.find((worker) => worker.kind === 'gpu')!;
        return entry.state === 'running' && entry.pid !== gpu.pid ? entry : undefined;
      },
      120_000,
    );
    expect(after.restarts).toBe(1);
    expect(after.lastExit?.reason).toBe('killed by SIGKILL');
    expect(alive(after.pid!)).toBe(true);
    expect(stderr).toContain(`weft up: the gpu worker (pid ${gpu.pid}) died (killed by SIGKILL)`);
    expect(stderr).toMatch(/weft up: restarting the gpu worker in 1\.0 s \(restart 1\)/);
    expect(stderr).toContain(`weft up: the gpu worker is polling again (pid ${after.pid})`);

    // The smoke pipeline runs a step on each queue, the gpu one included: the new worker serves it.
    const run = await runWeft(['run', 'smoke', '--json'], environment);
    expect(run.code).toBe(0);
    const outcome = JSON.parse(run.stdout) as { result: { steps: { taskQueue: string; worker: string }[] } };
    expect(outcome.result.steps.map((step) => step.taskQueue)).toEqual(['weft-pipeline', 'weft-gpu', 'weft-registry']);

    const { checks } = await doctor();
    expect(checks.temporal?.status).toBe('ok');
    expect(checks.workers?.status).toBe('warn');
    expect(checks.workers?.detail).toContain(`gpu pid ${after.pid}, restarted 1× (last: killed by SIGKILL`);
  }, 300_000);

  it('reports a dead Temporal server on stderr and in doctor', async () => {
    const serverPid = Number(
      fs
        .readdirSync('/proc')
        .filter((entry) => /^\d+$/.test(entry))
        .find((pid) => {
          try {
            const parent = /^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
            const command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
            return Number(parent) === up.pid && command.includes('server') && command.includes('start-dev');
          } catch {
            return false;
          }
        }),
    );
    expect(serverPid).toBeGreaterThan(0);
    process.kill(serverPid, 'SIGKILL');
    await waitFor(
      'weft up to report the dead server',
      async () => (status().temporal.state === 'down' ? true : undefined),
      60_000,
    );
    expect(stderr).toMatch(/weft up: the Temporal server at 127\.0\.0\.1:\d+ exited \(killed by SIGKILL\)/);
    const { code, checks } = await doctor();
    expect(checks.temporal?.status).toBe('fail');
    expect(checks.temporal?.detail).toMatch(/exited \(killed by SIGKILL\).*workers cannot poll; restart weft up/);
    expect(code).toBe(1);
  }, 120_000);
});
