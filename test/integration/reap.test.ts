import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { openLineageStore } from '../../lib/lineage';
import { runWeft } from '../support/cli';
import { temporalCliForTests } from '../support/temporal';

/** `weft reap`: the run reaper of the orchestrator worker, on demand — closes the runs of ended workflows only. */
describe('weft reap', () => {
  let environment: TestWorkflowEnvironment;

  beforeAll(async () => {
    environment = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: temporalCliForTests() } },
    });
  });

  afterAll(async () => {
    await environment?.teardown();
  });

  it('closes the run of a terminated workflow as killed, leaves a running one, and says so', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-reap-'));
    const lineageUrl = `sqlite://${path.join(home, 'lineage.db')}`;
    // No worker polls this queue: the workflows stay running until terminated, with no code of theirs running.
    const start = (workflowId: string) =>
      environment.client.workflow.start('lifecyclePipelineWorkflow', { taskQueue: 'weft-reap-test', workflowId });
    const terminated = await start('reap-terminated');
    const running = await start('reap-running');
    const store = await openLineageStore(lineageUrl);
    try {
      const terminatedRun = await store.runs.create({ jobType: 'fine-tune', workflowId: terminated.workflowId });
      const runningRun = await store.runs.create({ jobType: 'fine-tune', workflowId: running.workflowId });
      await terminated.terminate('operator stopped it');

      const cli = { WEFT_HOME: home, WEFT_LINEAGE_URL: lineageUrl, TEMPORAL_ADDRESS: environment.address };
      const result = await runWeft(['reap', '--json'], cli);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual([
        { runId: terminatedRun.id, workflowId: 'reap-terminated', workflowStatus: 'TERMINATED', state: 'killed' },
      ]);
      expect((await store.runs.get(terminatedRun.id)).state).toBe('killed');
      expect((await store.runs.get(runningRun.id)).state).toBe('running');

      const again = await runWeft(['reap'], cli);
      expect(again.code).toBe(0);
      expect(again.stdout).toBe('No open lineage run belongs to an ended workflow.\n');
    } finally {
      await running.terminate('test over').catch(() => undefined);
      await store.close();
    }
  }, 120_000);
});
