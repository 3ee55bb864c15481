import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

/**
 * Histories recorded by earlier releases must replay on today's workflow code, or every run still in flight when a
 * worker is upgraded fails with a non-determinism error. The fixture is a published lifecyclePipelineWorkflow run
 * recorded before #16 renamed `publishRagModel` to `promoteRagModel` (mocked activities, dev server, gate pass
 * against a champion).
 */
const fixture = path.join(__dirname, 'fixtures', 'lifecycle-pipeline-history.json');

function loadHistory(): temporal.api.history.v1.History {
  // The proto package's own decoder: the SDK's historyFromJSON needs protobufjs's JSON extension, which this
  // install's duplicate protobufjs copies break ("type must be a Type").
  return temporal.api.history.v1.History.fromObject(JSON.parse(fs.readFileSync(fixture, 'utf8')));
}

describe('replay of recorded histories', () => {
  let workflowBundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  });

  it('a lifecyclePipelineWorkflow run recorded before the promoteRagModel rename replays without non-determinism', async () => {
    const history = loadHistory();
    const scheduled = history.events
      .map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter((name): name is string => typeof name === 'string');
    // The recording really is of the old name: the patch's replay branch is what this test exercises.
    expect(scheduled).toContain('publishRagModel');
    expect(scheduled).not.toContain('promoteRagModel');
    await expect(
      Worker.runReplayHistory({ workflowBundle }, history, 'lifecycle/climate-rag/captured'),
    ).resolves.toBeUndefined();
  });

  it('the same history with the publish step altered fails replay: the test detects non-determinism', async () => {
    const history = loadHistory();
    for (const event of history.events) {
      const type = event.activityTaskScheduledEventAttributes?.activityType;
      if (type?.name === 'publishRagModel') type.name = 'someOtherActivity';
    }
    await expect(
      Worker.runReplayHistory({ workflowBundle }, history, 'lifecycle/climate-rag/captured'),
    ).rejects.toThrow(/[Nn]ondeterminism|does not match/);
  });
});
