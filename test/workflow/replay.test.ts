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
/**
 * The same scenario recorded after #21 added the `validate-inputs-first` patch (a validateLifecycleInput activity
 * before fine-tuning): a run in flight with the patch must replay too.
 */
const validatedFixture = path.join(__dirname, 'fixtures', 'lifecycle-pipeline-history-validated.json');

function loadHistory(file = fixture): temporal.api.history.v1.History {
  // The proto package's own decoder: the SDK's historyFromJSON needs protobufjs's JSON extension, which this
  // install's duplicate protobufjs copies break ("type must be a Type").
  return temporal.api.history.v1.History.fromObject(JSON.parse(fs.readFileSync(file, 'utf8')));
}

function scheduledActivities(history: temporal.api.history.v1.History): string[] {
  return history.events
    .map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((name): name is string => typeof name === 'string');
}

/** The ids of the patches the history recorded (`patched()` writes a `core_patch` marker naming its id). */
function recordedPatches(history: temporal.api.history.v1.History): string[] {
  return history.events
    .filter((event) => event.markerRecordedEventAttributes?.markerName === 'core_patch')
    .flatMap((event) =>
      Object.values(event.markerRecordedEventAttributes!.details ?? {}).flatMap((payloads) =>
        (payloads.payloads ?? []).map((payload) => Buffer.from(payload.data ?? []).toString('utf8')),
      ),
    );
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

  it('validate-inputs-first: a history recorded before the patch (no validation step) replays', async () => {
    const history = loadHistory();
    expect(scheduledActivities(history)[0]).toBe('fineTune');
    expect(recordedPatches(history).join(' ')).not.toContain('validate-inputs-first');
    await expect(
      Worker.runReplayHistory({ workflowBundle }, history, 'lifecycle/climate-rag/captured'),
    ).resolves.toBeUndefined();
  });

  it('validate-inputs-first: a history recorded with the patch (validation first) replays', async () => {
    const history = loadHistory(validatedFixture);
    expect(scheduledActivities(history).slice(0, 2)).toEqual(['validateLifecycleInput', 'fineTune']);
    expect(recordedPatches(history).join(' ')).toContain('validate-inputs-first');
    await expect(
      Worker.runReplayHistory({ workflowBundle }, history, 'lifecycle/climate-rag/captured-validated'),
    ).resolves.toBeUndefined();
  });

  it('validate-inputs-first: the patched history with its validation step altered fails replay', async () => {
    const history = loadHistory(validatedFixture);
    for (const event of history.events) {
      const type = event.activityTaskScheduledEventAttributes?.activityType;
      if (type?.name === 'validateLifecycleInput') type.name = 'someOtherActivity';
    }
    await expect(
      Worker.runReplayHistory({ workflowBundle }, history, 'lifecycle/climate-rag/captured-validated'),
    ).rejects.toThrow(/[Nn]ondeterminism|does not match/);
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
