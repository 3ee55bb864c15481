import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createIntegrateActivities } from '../../activities/integrate';
import { createReevaluationActivities } from '../../activities/reevaluation';
import { createRegistryActivities } from '../../activities/registry';
import { openLineageStore, type LineageStore } from '../../lib/lineage';
import { selectRagModel } from '../../lib/rag/rag-model-selector';
import { ragModelCollectionRef } from '../../lib/rag/registries';
import { errorTypes } from '../../workflows/contracts/errors';
import type { GateDecision } from '../../workflows/contracts/lifecycle';

const gate: GateDecision = {
  decision: 'pass',
  metric: 'f1',
  challengerMean: 0.4,
  championMean: 0.3,
  difference: 0.1,
  ciLow: 0.02,
  ciHigh: 0.18,
  margin: 0,
  reason: 'better',
};
// The demo app keeps the seed's collection name; any other app gets a collection named after it.
const collection = ragModelCollectionRef('weft', 'climate-rag');
const ragModel = (digest: string) => `weave:///weft/rag-demo/object/RagModel:${digest}`;

describe('registry activities on a real lineage store', () => {
  let store: LineageStore;
  let directory: string;
  const environment = new MockActivityEnvironment();

  beforeEach(async () => {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-registry-'));
    store = await openLineageStore(`sqlite://${path.join(directory, 'lineage.db')}`);
  });

  afterEach(async () => {
    await store.close();
  });

  it('publishing is exactly once: a retry returns the same registry version and moves production once', async () => {
    const activities = createRegistryActivities({ store, org: 'weft' });
    const input = {
      app: 'climate-rag',
      ragModelRef: ragModel('first'),
      workflowId: 'wf-1',
      expectedProductionRef: null,
      gate,
    };
    const first = await environment.run(activities.promoteRagModel, input);
    const retried = await environment.run(activities.promoteRagModel, input);
    expect(retried).toEqual(first);
    expect(first).toEqual({ registryRef: `${collection}:v0`, version: 'v0' });
    expect(await store.registry.versions(collection)).toHaveLength(1);
    expect(await store.registry.aliasHistory(collection, 'production')).toHaveLength(1);
    const linked = await store.registry.resolve(`${collection}:production`);
    expect(linked.artifact.metadata.url).toBe(ragModel('first'));
  });

  it('refuses to publish over a production version the gate never saw, with a non-retryable alias conflict', async () => {
    const activities = createRegistryActivities({ store, org: 'weft' });
    await environment.run(activities.promoteRagModel, {
      app: 'climate-rag',
      ragModelRef: ragModel('first'),
      workflowId: 'wf-1',
      expectedProductionRef: null,
      gate,
    });
    const stale = await environment
      .run(activities.promoteRagModel, {
        app: 'climate-rag',
        ragModelRef: ragModel('second'),
        workflowId: 'wf-2',
        expectedProductionRef: null, // this run's gate saw no production version
        gate,
      })
      .catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(ApplicationFailure);
    expect((stale as ApplicationFailure).type).toBe(errorTypes.aliasConflict);
    expect((stale as ApplicationFailure).nonRetryable).toBe(true);
    expect((stale as ApplicationFailure).message).toMatch(
      /production moved to v0 after this run's gate compared against no production version/,
    );
    expect((await store.registry.resolve(`${collection}:production`)).artifact.metadata.url).toBe(ragModel('first'));

    // With the champion it compared against, the next run publishes and moves production.
    const next: { version: string } = await environment.run(activities.promoteRagModel, {
      app: 'climate-rag',
      ragModelRef: ragModel('third'),
      workflowId: 'wf-3',
      expectedProductionRef: ragModel('first'),
      gate,
    });
    expect(next.version).toBe('v2');
    expect((await store.registry.resolve(`${collection}:production`)).artifact.metadata.url).toBe(ragModel('third'));
  });

  it('the demo app keeps the seed collection "RAG Model"; another app gets its own collection', () => {
    expect(collection).toBe('wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model');
    expect(ragModelCollectionRef('weft', 'legal-rag')).toBe(
      'wandb-artifact:///weft/wandb-registry-RAG Models/legal-rag',
    );
  });

  it('two apps: each has its own production, champion and nightly regression check', async () => {
    const registry = createRegistryActivities({ store, org: 'weft' });
    const integrate = createIntegrateActivities({
      store,
      org: 'weft',
      rag: {
        integrateChatModel: () => {
          throw new Error('integration is not part of this test');
        },
      },
    });
    const reevaluation = createReevaluationActivities({ store, org: 'weft' });
    // resolveChampion reads the RagModel it returns, so these are real objects.
    const ragModels: Record<string, string> = {};
    for (const name of ['climate1', 'legal1', 'legal2'])
      ragModels[name] = (await store.objects.publish({ name: 'RagModel', value: { name } })).ref;
    const publish = (app: string, name: string, challengerMean: number, expectedProductionRef: string | null) =>
      environment.run(registry.promoteRagModel, {
        app,
        ragModelRef: ragModels[name],
        workflowId: `lifecycle/${app}/${name}`,
        expectedProductionRef,
        gate: { ...gate, challengerMean },
      });

    await publish('climate-rag', 'climate1', 0.5, null);
    // The second app's first publish sees no production of its own: it is not superseded by the first app's.
    await expect(publish('legal-rag', 'legal1', 0.3, null)).resolves.toEqual({
      registryRef: 'wandb-artifact:///weft/wandb-registry-RAG Models/legal-rag:v0',
      version: 'v0',
    });
    await publish('legal-rag', 'legal2', 0.35, ragModels.legal1);

    const champion = async (app: string): Promise<string | null> => {
      const resolved: { productionRef: string | null } = await environment.run(integrate.resolveChampion, { app });
      return resolved.productionRef;
    };
    expect(await champion('climate-rag')).toBe(ragModels.climate1);
    expect(await champion('legal-rag')).toBe(ragModels.legal2);
    expect(await champion('unpublished-rag')).toBeNull();
    // `weft ask` without --rag can no longer guess which app is meant, and says how to choose.
    await expect(
      selectRagModel(store, undefined, { entity: 'weft', project: 'rag-demo', org: 'weft' }),
    ).rejects.toThrow(
      'Several apps in the "RAG Models" registry have a "production" version; pass one with --rag: ' +
        'wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model:production, ' +
        'wandb-artifact:///weft/wandb-registry-RAG Models/legal-rag:production.',
    );
    const legal = await selectRagModel(store, 'wandb-artifact:///weft/wandb-registry-RAG Models/legal-rag:production', {
      entity: 'weft',
      project: 'rag-demo',
      org: 'weft',
    });
    expect(legal).toEqual({ ragModelRef: ragModels.legal2, source: 'registry' });
    expect(await store.registry.aliasHistory(collection, 'production')).toHaveLength(1);

    // Each app's nightly check compares against the score accepted when *its* production was published.
    const result = async (mean: number) =>
      (await store.objects.publish({ name: 'EvaluationResult', value: { summary: { f1: { mean } }, rows: [] } })).ref;
    const check = async (app: string, mean: number) =>
      reevaluation.checkRegression({
        app,
        productionRagModelRef: (await champion(app))!,
        evaluationResultRef: await result(mean),
        metric: 'f1',
        threshold: 0.05,
      });
    expect(await check('climate-rag', 0.4)).toMatchObject({ acceptedMean: 0.5, regression: true });
    expect(await check('legal-rag', 0.34)).toMatchObject({ acceptedMean: 0.35, regression: false });
  });

  it('registerModel logs the fine-tuned model once and refuses a run folder without an ONNX export', async () => {
    const activities = createRegistryActivities({ store, org: 'weft' });
    const modelDirectory = path.join(directory, 'run');
    const fineTune = {
      modelDirectory,
      summary: {
        steps: 3,
        finalLoss: 1.5,
        tokensPerSecond: 10,
        trainSeconds: 1,
        resumedFromStep: 0,
        maxAbsLogitDifference: 1e-5,
      },
    };
    const base = await store.artifacts.log({
      name: 'base-chat',
      type: 'model',
      files: [{ path: 'model.onnx', content: 'base' }],
    });
    const input = {
      app: 'climate-rag',
      runKey: 'wf-9',
      workflowId: 'wf-9',
      baseModelRef: base.ref,
      trainingDatasetRef: 'weave:///weft/rag-demo/object/climate-qa-train:abc',
      fineTune,
    };
    await expect(environment.run(activities.registerModel, input)).rejects.toThrow(/has no model.onnx/);
    fs.mkdirSync(path.join(modelDirectory, 'onnx'), { recursive: true });
    fs.mkdirSync(path.join(modelDirectory, 'hf'), { recursive: true });
    fs.writeFileSync(path.join(modelDirectory, 'onnx', 'model.onnx'), 'tuned');
    fs.writeFileSync(path.join(modelDirectory, 'hf', 'config.json'), '{}');
    const first: { artifactRef: string; registryRef: string } = await environment.run(activities.registerModel, input);
    const again = await environment.run(activities.registerModel, input);
    expect(again).toEqual(first);
    expect(first.registryRef).toBe('wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag:v0');
    const artifact = await store.artifacts.get(first.artifactRef);
    expect(artifact.manifest.map((entry) => entry.path).sort()).toEqual(['hf/config.json', 'model.onnx']);
    expect(artifact.metadata).toMatchObject({ base_model: base.ref, final_loss: 1.5 });
    const candidate = await store.registry.resolve(
      'wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag:candidate',
    );
    expect(candidate.version).toBe(0);
  });
});
