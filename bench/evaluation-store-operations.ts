/**
 * Lineage-store operations per evaluated row, by activity: what moving scoring into the predict activity would save.
 * Runs the real evaluation activities on a real SQLite store; the predictor is a stand-in (canned answers), since
 * only the store traffic is measured. Prints operations per row for predictBatch and scoreBatch side by side.
 *
 *   npx tsx bench/evaluation-store-operations.ts [--rows 32] [--batch-size 8]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createEvaluationActivities } from '../activities/evaluation';
import { openLineageStore } from '../lib/lineage';
import type { RagPredictionService } from '../lib/evaluation';
import { scorersByName } from '../lib/scoring/scorers';
import type { EvaluationPlan } from '../workflows/contracts/evaluation';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

async function main(): Promise<void> {
  const rowCount = flag('rows', 32);
  const batchSize = flag('batch-size', 8);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-store-ops-'));
  const store = await openLineageStore(`sqlite://${path.join(home, 'lineage.db')}`);
  // Count the operations the activities ask of the stores: top-level calls only, not the stores' calls to themselves.
  const counts = new Map<string, number>();
  let depth = 0;
  for (const noun of ['calls', 'datasets', 'objects', 'runs'] as const) {
    const target = store[noun] as unknown as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(target))) {
      const method = target[name];
      if (name === 'constructor' || typeof method !== 'function') continue;
      target[name] = async (...args: unknown[]) => {
        if (depth === 0) counts.set(`${noun}.${name}`, (counts.get(`${noun}.${name}`) ?? 0) + 1);
        depth += 1;
        try {
          return await (method as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          depth -= 1;
        }
      };
    }
  }
  const dataset = await store.datasets.publish({
    name: 'qa',
    rows: Array.from({ length: rowCount }, (_, i) => ({ question: `q${i}`, answer: `a${i}`, doc_id: `d${i % 4}` })),
  });
  const evaluation = await store.objects.publish({
    name: 'Evaluation',
    value: { dataset: dataset.ref, scorers: Object.keys(scorersByName) },
  });
  const ragModel = await store.objects.publish({ name: 'RagModel', value: { stand_in: true } });
  // Stand-in predictor: canned answers, so the run measures store traffic and nothing else.
  const cannedPredictions: RagPredictionService = {
    async predict(_ref, questions) {
      return questions.map((question) => ({
        answer: `answer to ${question}`,
        contexts: [{ documentId: 'd0', text: 'context', score: 1 }],
        promptTokens: 10,
        completionTokens: 3,
        timings: { retrievalMilliseconds: 1, generationMilliseconds: 1, totalMilliseconds: 2 },
      }));
    },
    async cacheIdentity() {
      return { key: 'stand-in', sampled: false };
    },
  };
  const activities = createEvaluationActivities({ store, rag: cannedPredictions });
  const environment = new MockActivityEnvironment();
  const plan: EvaluationPlan = await environment.run(activities.pipeline.planEvaluation, {
    evaluationRef: evaluation.ref,
    ragModelRefs: [ragModel.ref],
    batchSize,
    evaluationRunId: 'bench-store-ops',
  });
  const measure = async (label: string, run: () => Promise<unknown>) => {
    counts.clear();
    await run();
    const total = [...counts.values()].reduce((sum, value) => sum + value, 0);
    const detail = [...counts.entries()].map(([name, value]) => `${name} ${(value / rowCount).toFixed(2)}`).join(', ');
    process.stdout.write(`${label.padEnd(12)} ${(total / rowCount).toFixed(2)} store operations per row (${detail})\n`);
    return total / rowCount;
  };
  const predict = await measure('predictBatch', async () => {
    for (let batchIndex = 0; batchIndex < plan.batchCount; batchIndex += 1)
      await environment.run(activities.gpu.predictBatch, { plan, modelIndex: 0, batchIndex, fresh: true });
  });
  const score = await measure('scoreBatch', async () => {
    for (let batchIndex = 0; batchIndex < plan.batchCount; batchIndex += 1)
      await environment.run(activities.pipeline.scoreBatch, { plan, modelIndex: 0, batchIndex });
  });
  process.stdout.write(
    `${plan.scorers.length} scorers, ${rowCount} rows, batches of ${batchSize}: ${(predict + score).toFixed(2)} per row in all; ` +
      `scoring is ${((score / (predict + score)) * 100).toFixed(0)}% of them\n`,
  );
  await store.close();
  fs.rmSync(home, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
