import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, isPortOpen } from '../../lib/temporal/dev-server';
import { runWeft } from '../support/cli';

describe('weft CLI', () => {
  it('--help names every command, and each command has its own help', async () => {
    const help = await runWeft(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['up', 'run', 'status', 'demo'])
      expect(help.stdout).toMatch(new RegExp(`\\n\\s+${command}\\b`));
    const smokeHelp = await runWeft(['run', 'smoke', '--help']);
    expect(smokeHelp.stdout).toMatch(/--pause-ms <milliseconds>/);
  });

  it('rejects a bad option value with an actionable message and exit code 1, starting nothing', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cli-bad-'));
    const result = await runWeft(['run', 'smoke', '--pause-ms', 'soon'], { WEFT_HOME: home });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--pause-ms must be a whole number of milliseconds ≥ 0, got 'soon'/);
    expect(fs.readdirSync(home)).toEqual([]);
  });

  it('an unknown command says so and exits non-zero', async () => {
    const result = await runWeft(['tune']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/unknown command 'tune'/);
  });

  it('from a cold start, `weft run smoke --json` starts the embedded stack, completes, and stops it again', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cli-demo-'));
    const port = await freePort();
    const uiPort = await freePort();
    const result = await runWeft(['run', 'smoke', '--json'], {
      WEFT_HOME: home,
      WEFT_TEMPORAL_PORT: String(port),
      WEFT_UI_PORT: String(uiPort),
    });
    expect(result.stderr).not.toMatch(/weft: /);
    expect(result.code).toBe(0);
    const outcome = JSON.parse(result.stdout) as {
      workflowId: string;
      result: { steps: { taskQueue: string }[] };
      ui: string;
    };
    expect(outcome.result.steps.map((step) => step.taskQueue)).toEqual(['weft-pipeline', 'weft-gpu', 'weft-registry']);
    expect(outcome.ui).toBe(`http://127.0.0.1:${uiPort}/namespaces/default/workflows/${outcome.workflowId}`);
    // State persisted in WEFT_HOME, and nothing left listening.
    expect(fs.existsSync(path.join(home, 'temporal.db'))).toBe(true);
    expect(await isPortOpen('127.0.0.1', port)).toBe(false);
  });
});
