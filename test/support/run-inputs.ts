import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openLineageStore, type LineageStore } from '../../lib/lineage';
import { evaluationValue } from '../../lib/rag';
import type { LifecyclePipelineInput } from '../../workflows/contracts/lifecycle';

/** A real SQLite lineage store holding a base model artifact, a training Dataset and an Evaluation. */
export async function storeWithRunInputs(): Promise<{
  store: LineageStore;
  input: LifecyclePipelineInput;
  counts(): Promise<Record<string, number>>;
}> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-validation-'));
  const store = await openLineageStore(`sqlite://${path.join(folder, 'lineage.db')}`);
  const base = await store.artifacts.log({
    name: 'base-chat',
    type: 'model',
    files: [{ path: 'config.json', content: '{}' }],
  });
  const training = await store.datasets.publish({
    name: 'qa-train',
    rows: [{ question: 'q?', answer: 'a', context: 'a is the answer' }],
  });
  const evaluationDataset = await store.datasets.publish({
    name: 'qa-eval',
    rows: [{ question: 'q?', answer: 'a', doc_id: 'd1' }],
  });
  const evaluation = await store.objects.publish({
    name: 'Evaluation',
    value: evaluationValue({ dataset: evaluationDataset.ref, scorers: ['f1', 'exact_match'] }),
  });
  const counts = async () => {
    const rows = await Promise.all(
      ['objects', 'artifact_versions', 'runs', 'calls'].map(async (table) => {
        const [row] = await store.database.query<{ count: number }>(`SELECT COUNT(*) AS count FROM ${table}`);
        return [table, Number(row.count)] as const;
      }),
    );
    return Object.fromEntries(rows);
  };
  return {
    store,
    counts,
    input: {
      app: 'climate-rag',
      baseModelRef: base.ref,
      trainingDatasetRef: training.ref,
      evaluationRef: evaluation.ref,
      trainingConfig: 'demo-cpu',
      hyperParameters: { max_steps: 40, learning_rate: 0.001 },
    },
  };
}
