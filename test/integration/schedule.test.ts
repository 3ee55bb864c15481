import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { openLineageStore } from '../../lib/lineage';
import { evaluationValue } from '../../lib/rag';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal/dev-server';
import { startWorkerProcess, type WorkerProcess } from '../../lib/temporal/stack';
import type { ReevaluateWorkflowResult } from '../../workflows/contracts/reevaluation';
import { runWeft } from '../support/cli';

describe('weft schedule (nightly re-evaluation as a Temporal Schedule)', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-schedule-'));
  let server: DevServer;
  let orchestrator: WorkerProcess;
  let environment: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = await startDevServer({ home, port: await freePort(), uiPort: await freePort() });
    environment = { TEMPORAL_ADDRESS: server.address, WEFT_HOME: home };
    orchestrator = await startWorkerProcess('orchestrator', { home, environment });
  }, 180_000);

  afterAll(async () => {
    await orchestrator?.stop();
    await server?.stop();
  });

  it('creates, lists, describes, pauses, triggers and deletes the schedule of an app', async () => {
    // schedule create checks its evaluation before it contacts Temporal: a ref that does not resolve is refused.
    const unresolved = await runWeft(
      ['schedule', 'create', '--app', 'climate-rag', '--evaluation', 'weave:///weft/rag-demo/object/Evaluation:abc'],
      environment,
    );
    expect(unresolved.code).not.toBe(0);
    expect(unresolved.stderr).toMatch(/--evaluation .*Evaluation:abc does not exist/);

    const store = await openLineageStore(`sqlite://${path.join(home, 'lineage.db')}`);
    let evaluation: string;
    try {
      const dataset = await store.datasets.publish({ name: 'qa-eval', rows: [{ question: 'q?', answer: 'a' }] });
      const published = await store.objects.publish({
        name: 'Evaluation',
        value: evaluationValue({ dataset: dataset.ref, scorers: ['f1', 'exact_match'] }),
      });
      evaluation = published.ref;
    } finally {
      await store.close();
    }
    const created = await runWeft(
      ['schedule', 'create', '--app', 'climate-rag', '--evaluation', evaluation, '--cron', '0 2 * * *', '--json'],
      environment,
    );
    expect(created.stderr).toBe('');
    expect(JSON.parse(created.stdout)).toMatchObject({ scheduleId: 'weft-reevaluate-climate-rag' });

    const listed = JSON.parse((await runWeft(['schedule', 'list', '--json'], environment)).stdout) as {
      scheduleId: string;
    }[];
    expect(listed.map((entry) => entry.scheduleId)).toContain('weft-reevaluate-climate-rag');

    const described = JSON.parse(
      (await runWeft(['schedule', 'describe', 'weft-reevaluate-climate-rag', '--json'], environment)).stdout,
    ) as { overlap: string; paused: boolean; nextRuns: string[] };
    expect(described.paused).toBe(false);
    expect(String(described.overlap)).toMatch(/SKIP/);
    expect(new Date(described.nextRuns[0]).getUTCHours()).toBe(2);

    await runWeft(['schedule', 'pause', 'weft-reevaluate-climate-rag', '--note', 'maintenance'], environment);
    const paused = JSON.parse(
      (await runWeft(['schedule', 'describe', 'weft-reevaluate-climate-rag', '--json'], environment)).stdout,
    ) as { paused: boolean; note: string };
    expect(paused).toMatchObject({ paused: true, note: 'maintenance' });

    // A triggered run with no production RagModel yet ends cleanly and says so.
    expect((await runWeft(['schedule', 'trigger', 'weft-reevaluate-climate-rag'], environment)).code).toBe(0);
    const connection = await Connection.connect({ address: server.address });
    try {
      const client = new Client({ connection });
      // Schedules suffix the workflow id with the scheduled time; the schedule lists the runs it started.
      let workflowId: string | undefined;
      for (let attempt = 0; attempt < 100 && !workflowId; attempt += 1) {
        const description = await client.schedule.getHandle('weft-reevaluate-climate-rag').describe();
        const action = description.info.recentActions[0]?.action;
        workflowId = action?.type === 'startWorkflow' ? action.workflow.workflowId : undefined;
        if (!workflowId) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(workflowId).toMatch(/^reevaluate\/climate-rag/);
      const result = (await client.workflow.getHandle(workflowId!).result()) as ReevaluateWorkflowResult;
      expect(result).toMatchObject({ status: 'no-production', alerted: false });
    } finally {
      await connection.close();
    }

    expect((await runWeft(['schedule', 'delete', 'weft-reevaluate-climate-rag'], environment)).code).toBe(0);
    const missing = await runWeft(['schedule', 'describe', 'weft-reevaluate-climate-rag'], environment);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/No schedule with that id/);
  });

  it('refuses a bad metric or threshold before creating anything', async () => {
    const bad = await runWeft(
      ['schedule', 'create', '--app', 'x', '--evaluation', 'weave:///a/b/object/E:1', '--metric', 'bleu'],
      environment,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--metric must be one of exact_match, f1, hit@5, mrr, groundedness, got 'bleu'/);
  });
});
