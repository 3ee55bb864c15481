import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createReevaluationActivities } from '../../activities/reevaluation';
import { openLineageStore, type LineageStore } from '../../lib/lineage';
import { ragModelCollectionRef, registryNames } from '../../lib/rag/registries';

describe('nightly re-evaluation activities on a real lineage store', () => {
  let directory: string;
  let store: LineageStore;
  const ragModelRef = 'weave:///weft/rag-demo/object/RagModel:productiondigest';

  beforeEach(async () => {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-reevaluate-'));
    store = await openLineageStore(`sqlite://${path.join(directory, 'lineage.db')}`);
    await store.registry.create({ name: registryNames.ragModels, artifactTypes: ['rag-model'] });
    const logged = await store.artifacts.log({
      name: 'climate-rag-rag-model',
      type: 'rag-model',
      metadata: { url: ragModelRef, gate: { metric: 'f1', challengerMean: 0.5 } },
      references: [{ uri: ragModelRef, path: 'rag-model' }],
    });
    await store.registry.link({
      artifact: logged.ref,
      target: ragModelCollectionRef('weft', 'climate-rag'),
    });
  });

  afterEach(async () => {
    await store.close();
  });

  const resultWithF1 = async (mean: number) =>
    (
      await store.objects.publish({
        name: 'EvaluationResult',
        value: { summary: { f1: { mean, ciLow: mean - 0.1, ciHigh: mean + 0.1, count: 80 } }, rows: [] },
      })
    ).ref;

  it('flags a drop beyond the threshold against the score accepted at publish time, and not a small one', async () => {
    const activities = createReevaluationActivities({ store, org: 'weft' });
    const input = { app: 'climate-rag', productionRagModelRef: ragModelRef, metric: 'f1', threshold: 0.05 };
    const dropped = await activities.checkRegression({ ...input, evaluationResultRef: await resultWithF1(0.4) });
    expect(dropped).toMatchObject({ regression: true, acceptedMean: 0.5, currentMean: 0.4 });
    expect(dropped.message).toBe('f1 = 0.400 vs 0.500 accepted at publish (threshold 0.05): REGRESSION');
    const steady = await activities.checkRegression({ ...input, evaluationResultRef: await resultWithF1(0.47) });
    expect(steady.regression).toBe(false);
  });

  it('sends the alert to the configured command as JSON on stdin', async () => {
    const alertFile = path.join(directory, 'alert.json');
    const activities = createReevaluationActivities({ store, org: 'weft', alertCommand: `cat > '${alertFile}'` });
    const check = {
      regression: true,
      metric: 'f1',
      currentMean: 0.4,
      acceptedMean: 0.5,
      threshold: 0.05,
      message: 'x',
    };
    expect(await activities.sendAlert({ app: 'climate-rag', workflowId: 'reevaluate/climate-rag', check })).toBe(true);
    expect(JSON.parse(fs.readFileSync(alertFile, 'utf8'))).toMatchObject({
      kind: 'weft.regression',
      app: 'climate-rag',
      workflowId: 'reevaluate/climate-rag',
      currentMean: 0.4,
    });
    const silent = createReevaluationActivities({ store, org: 'weft' });
    expect(await silent.sendAlert({ app: 'climate-rag', workflowId: 'w', check })).toBe(false);
  });

  it('points the Evaluation at the latest version of its dataset', async () => {
    const first = await store.datasets.publish({
      name: 'qa-eval',
      rows: [{ question: 'q1', answer: 'a', doc_id: 'd' }],
    });
    const evaluation = await store.objects.publish({
      name: 'Evaluation',
      value: { dataset: first.ref, scorers: ['f1'] },
    });
    const activities = createReevaluationActivities({ store, org: 'weft' });
    expect(await activities.refreshEvaluation({ evaluationRef: evaluation.ref })).toEqual({
      evaluationRef: evaluation.ref,
      datasetRef: first.ref,
    });
    const second = await store.datasets.publish({
      name: 'qa-eval',
      rows: [
        { question: 'q1', answer: 'a', doc_id: 'd' },
        { question: 'q2', answer: 'b', doc_id: 'd' },
      ],
    });
    const refreshed = await activities.refreshEvaluation({ evaluationRef: evaluation.ref });
    expect(refreshed.datasetRef).toBe(second.ref);
    expect(refreshed.evaluationRef).not.toBe(evaluation.ref);
    expect((await store.objects.get(refreshed.evaluationRef)).value).toMatchObject({
      dataset: second.ref,
      scorers: ['f1'],
    });
  });
});
