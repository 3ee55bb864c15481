import fs from 'node:fs';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createEvaluationActivities } from '../../../activities/evaluation';
import { createGateActivities } from '../../../activities/gate';
import { createRegistryActivities } from '../../../activities/registry';
import type { RagPrediction, RagPredictionService } from '../../../lib/evaluation';
import type { LineageStore } from '../../../lib/lineage';
import { AppCatalogue } from '../../../lib/rag/app-catalogue';
import type { EvaluationModelResult } from '../../../workflows/contracts/evaluation';
import { defaultGatePolicy, type GateDecision } from '../../../workflows/contracts/lifecycle';

/** Text a page must show literally: if it ran, `window.__xss` would be set. */
export const hostileText = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

export interface UiFixture {
  app: string;
  workflowId: string;
  baseModelRef: string;
  chatArtifactRef: string;
  chatRegistryRef: string;
  challengerRef: string;
  championRef: string;
  /** [challenger, champion], as the pipeline's evaluation writes them. */
  results: EvaluationModelResult[];
  gate: GateDecision;
  wandbRunId: string;
  rowCount: number;
}

/**
 * A canned RAG service (a fake, named as such: the fixture is about what the store holds, not what a model says):
 * the challenger answers rows 0–6 of every ten correctly, the champion rows 3–7, so row 7 of every ten regresses.
 */
export function cannedRag(
  questions: Map<string, { answer: string; docId: string }>,
  challengerRef: string,
): RagPredictionService {
  return {
    async predict(ragModelRef, asked) {
      return asked.map((question): RagPrediction => {
        const row = questions.get(question)!;
        const index = Number(/#(\d+)/.exec(question)?.[1] ?? 0) % 10;
        const correct = ragModelRef === challengerRef ? index <= 6 : index >= 3 && index <= 7;
        return {
          answer: correct ? row.answer : `not ${row.answer}`,
          contexts: [
            { documentId: correct ? row.docId : 'doc-other', text: 'passage', score: 0.9 },
            { documentId: 'doc-filler', text: 'passage', score: 0.4 },
          ],
          promptTokens: 20,
          completionTokens: 4,
          timings: { retrievalMilliseconds: 2, generationMilliseconds: 10, totalMilliseconds: 12 },
        };
      });
    },
    async cacheIdentity(ragModelRef) {
      return { key: `canned|${ragModelRef}`, sampled: false };
    },
  };
}

/**
 * A demo-sized lifecycle written through the pipeline's own activities (registry, evaluation, gate) on a real store:
 * base model → fine-tune run → chat model artifact (linked into RAG Chat Models) → ChatModel → RagModel, an evaluation
 * of challenger and champion, the gate, and both published to the app's RAG Models collection (production moved).
 */
export async function buildUiFixture(store: LineageStore, folder: string, rowCount = 24): Promise<UiFixture> {
  const environment = new MockActivityEnvironment();
  // Runs an activity as a worker would (its Context present), typed as the activity is.
  const run = <Input, Output>(activity: (input: Input) => Promise<Output>, input: Input): Promise<Output> =>
    environment.run(activity, input) as Promise<Output>;
  const app = 'ui-demo';
  const workflowId = `lifecycle/${app}/base-chat/0123456789abcdef`;
  const championWorkflowId = `lifecycle/${app}/base-chat/fedcba9876543210`;
  const catalogue = new AppCatalogue(store);

  const base = await store.artifacts.log({
    name: 'base-chat',
    type: 'model',
    files: [{ path: 'model.onnx', content: 'base weights' }],
  });
  const embedding = await store.artifacts.log({
    name: 'minilm',
    type: 'model',
    files: [{ path: 'model.onnx', content: 'embedding weights' }],
  });
  const rows = Array.from({ length: rowCount }, (_, index) => ({
    id: `q${index}`,
    question: index === 3 ? `Question #${index} ${hostileText}` : `What is fact #${index}?`,
    answer: `answer ${index}`,
    doc_id: `doc-${index}`,
  }));
  const training = await store.datasets.publish({ name: 'qa-train', rows: rows.slice(0, 4) });
  const evaluationSet = await store.datasets.publish({ name: 'qa-eval', rows });

  const tuned = path.join(folder, 'tuned');
  fs.mkdirSync(path.join(tuned, 'onnx'), { recursive: true });
  fs.writeFileSync(path.join(tuned, 'onnx', 'model.onnx'), 'tuned weights');
  const registry = createRegistryActivities({ store, org: store.defaults.org });
  const registered = await run(registry.registerModel, {
    app,
    runKey: workflowId,
    workflowId,
    baseModelRef: base.ref,
    trainingDatasetRef: training.ref,
    fineTune: {
      modelDirectory: tuned,
      summary: {
        steps: 12,
        finalLoss: 1.25,
        tokensPerSecond: 900,
        trainSeconds: 3,
        resumedFromStep: 0,
        maxAbsLogitDifference: 0.0001,
      },
    },
  });

  const prompt = await catalogue.publishPrompt();
  const ragModel = async (modelArtifactRef: string) => {
    const chatModel = await catalogue.publishChatModel({ modelArtifactRef });
    return catalogue.publishRagModel({
      chatModel: chatModel.ref,
      embeddingModel: embedding.ref,
      collectionAlias: 'climate-docs',
      prompt: prompt.ref,
      retrieval: { topK: 2 },
    });
  };
  const champion = await ragModel(base.ref);
  const challenger = await ragModel(registered.artifactRef);
  const evaluation = await catalogue.publishEvaluation({
    dataset: evaluationSet.ref,
    scorers: ['exact_match', 'f1', 'hit@5', 'mrr'],
  });

  const questions = new Map(rows.map((row) => [row.question, { answer: row.answer, docId: row.doc_id }]));
  const activities = createEvaluationActivities({ store, rag: cannedRag(questions, challenger.ref) });
  const evaluationRunId = `${workflowId}/evaluate`;
  const plan = await run(activities.pipeline.planEvaluation, {
    evaluationRef: evaluation.ref,
    ragModelRefs: [challenger.ref, champion.ref],
    batchSize: 8,
    evaluationRunId,
  });
  for (const modelIndex of plan.models.keys()) {
    for (let batchIndex = 0; batchIndex < plan.batchCount; batchIndex += 1) {
      await run(activities.gpu.predictBatch, { plan, modelIndex, batchIndex, fresh: false });
      await run(activities.pipeline.scoreBatch, { plan, modelIndex, batchIndex });
    }
  }
  const results = await run(activities.pipeline.summarizeEvaluation, { plan, workflowId: evaluationRunId });

  const gates = createGateActivities({ store });
  // The champion went to production in an earlier run (no champion then: thresholds), the challenger now.
  const championGate = await run(gates.gateStatistics, {
    challengerResultRef: results[1]!.evaluationResultRef,
    championResultRef: null,
    policy: defaultGatePolicy,
  });
  await run(registry.promoteRagModel, {
    app,
    ragModelRef: champion.ref,
    workflowId: championWorkflowId,
    expectedProductionRef: null,
    gate: championGate,
  });
  const gate = await run(gates.gateStatistics, {
    challengerResultRef: results[0]!.evaluationResultRef,
    championResultRef: results[1]!.evaluationResultRef,
    policy: defaultGatePolicy,
  });
  await run(registry.promoteRagModel, {
    app,
    ragModelRef: challenger.ref,
    workflowId,
    expectedProductionRef: champion.ref,
    gate,
  });
  return {
    app,
    workflowId,
    baseModelRef: base.ref,
    chatArtifactRef: registered.artifactRef,
    chatRegistryRef: registered.registryRef,
    challengerRef: challenger.ref,
    championRef: champion.ref,
    results,
    gate,
    wandbRunId: plan.wandbRunId,
    rowCount,
  };
}
