import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createRegistryActivities } from '../../activities/registry';
import { createWandbPublishActivities } from '../../activities/wandb-publish';
import { openLineageStore, type LineageStore } from '../../lib/lineage';
import {
  chatModelCollectionRef,
  ragModelCollectionRef,
  registryArtifactTypes,
  registryNames,
} from '../../lib/rag/registries';
import { errorTypes } from '../../workflows/contracts/errors';
import { openWandbPublisher, selectWandbRemote, WandbPublisher } from '../../lib/wandb-remote';
import type { WandbPublishResult } from '../../workflows/contracts/lifecycle';
import { createTestLocation, type TestLocation } from '../lineage/support/test-backends';
import { FaultProxy } from './support/fault-proxy';
import { startWandbServe, WANDB_TOKEN, type WandbServeFixture } from './support/wandb-fixture';

/**
 * lib/wandb-remote against a real `weft serve` standing in for W&B, with a fault injector in front of it for the
 * answers W&B gives that weft serve never does (a 403 on a registry link, a 503).
 */

const quiet = { info: () => undefined, warn: () => undefined };

describe('W&B publishing configuration', () => {
  it('is off without WANDB_ENTITY, and says so when other W&B variables are set', () => {
    expect(selectWandbRemote({}, { project: 'rag-demo' })).toEqual({ config: undefined, notice: undefined });
    const selection = selectWandbRemote({ WANDB_BASE_URL: 'http://x', WANDB_API_KEY: 'k' }, { project: 'rag-demo' });
    expect(selection.config).toBeUndefined();
    expect(selection.notice).toMatch(/WANDB_BASE_URL and WANDB_API_KEY are set but WANDB_ENTITY is not/);
  });

  it('names every missing or malformed variable at once', () => {
    expect(() =>
      selectWandbRemote(
        { WANDB_ENTITY: 'team', WANDB_BASE_URL: 'ftp://host', WANDB_ORG: 'bad org!' },
        { project: 'p' },
      ),
    ).toThrow(
      /WANDB_API_KEY is not set.*WANDB_BASE_URL="ftp:\/\/host" must be an http:\/\/ or https:\/\/ URL.*WANDB_ORG="bad org!" is not usable/,
    );
  });

  it('defaults the project to the local one, the org to the entity and the trace server to <base>/traces', () => {
    const { config } = selectWandbRemote(
      { WANDB_ENTITY: 'team', WANDB_BASE_URL: 'http://127.0.0.1:9/', WANDB_API_KEY: 'key' },
      { project: 'rag-demo' },
    );
    expect(config).toEqual({
      baseUrl: 'http://127.0.0.1:9',
      traceServerUrl: 'http://127.0.0.1:9/traces',
      apiKey: 'key',
      entity: 'team',
      project: 'rag-demo',
      org: 'team',
    });
  });
});

describe('publishing a fine-tuned chat model into W&B (a second weft serve)', () => {
  let remote: WandbServeFixture;
  let proxy: FaultProxy;
  let location: TestLocation;
  let store: LineageStore;
  let registryRef: string;
  const environment = () => ({
    WANDB_ENTITY: 'team-remote',
    WANDB_PROJECT: 'rag-remote',
    WANDB_ORG: 'weft',
    WANDB_BASE_URL: proxy.url,
    WF_TRACE_SERVER_URL: proxy.url,
    WANDB_API_KEY: WANDB_TOKEN,
  });

  beforeAll(async () => {
    remote = await startWandbServe();
    proxy = await FaultProxy.start(remote.url);
    location = await createTestLocation('sqlite');
    store = await openLineageStore(location.url, { blobDirectory: location.blobDirectory });
    // What registerModel records locally: the fine-tune run, the model artifact it logged, the registry link.
    const run = await store.runs.create({ jobType: 'fine-tune', config: { steps: 12 } });
    const logged = await store.artifacts.log({
      name: 'climate-rag-chat',
      type: 'model',
      metadata: { steps: 12, workflow_id: 'wf-403' },
      files: [
        { path: 'model.onnx', content: Buffer.alloc(300_000, 3) },
        { path: 'hf/config.json', content: '{"model_type": "llama"}' },
      ],
      runId: run.id,
    });
    await store.runs.finish(run.id, { summary: { final_loss: 1.5 }, state: 'finished' });
    await store.registry.create({
      org: 'weft',
      name: registryNames.chatModels,
      artifactTypes: [registryArtifactTypes.chatModels],
    });
    registryRef = (
      await store.registry.link({ artifact: logged.ref, target: chatModelCollectionRef('weft', 'climate-rag') })
    ).ref;
  }, 120_000);

  afterAll(async () => {
    await proxy?.stop();
    await store?.close();
    await location?.dispose();
    await remote?.dispose();
  });

  const publish = async (publisher: WandbPublisher, ref = registryRef): Promise<WandbPublishResult> =>
    new MockActivityEnvironment().run(createWandbPublishActivities({ publisher }).publishChatModelToWandb, {
      app: 'climate-rag',
      workflowId: 'wf-403',
      registryRef: ref,
    });

  it('refuses a wrong API key at start, naming WANDB_API_KEY', async () => {
    await expect(
      openWandbPublisher(store, { ...environment(), WANDB_API_KEY: 'x'.repeat(40) }, { project: 'rag-demo' }, quiet),
    ).rejects.toThrow(/rejected WANDB_API_KEY \(…xxxx\) \(401\).*Set WANDB_API_KEY to a valid key/);
  });

  it('a 403 on the registry link (the seed’s recorded failure) fails for good, naming the key and the org; fixed, it links once', async () => {
    const publisher = (await openWandbPublisher(store, environment(), { project: 'rag-demo' }, quiet))!;
    proxy.decide = ({ operation }) =>
      operation === 'WeftLinkArtifact'
        ? { action: 'answer', status: 403, body: { errors: [{ message: 'permission denied' }] } }
        : { action: 'forward' };
    const failure = await publish(publisher).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).nonRetryable).toBe(true);
    expect((failure as ApplicationFailure).type).toBe('WandbAuthError');
    expect((failure as ApplicationFailure).message).toMatch(
      /refused WANDB_API_KEY \(…6789\) permission \(403\) to link into weft\/wandb-registry-RAG Chat Models\/climate-rag.*WANDB_ENTITY=team-remote.*WANDB_ORG=weft/,
    );
    // The run and the artifact are in W&B; the link is not.
    const artifact = await remote.store.artifacts.get(
      'wandb-artifact:///team-remote/rag-remote/climate-rag-chat:latest',
    );
    expect(artifact.version).toBe(0);
    await expect(
      remote.store.registry.versions('wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag'),
    ).rejects.toThrow();

    // The permission granted, the same activity again: the link, once, with `candidate`; no second artifact version.
    proxy.decide = () => ({ action: 'forward' });
    const result = await publish(publisher);
    expect(result.refs).toMatchObject({
      chatModelArtifact: 'wandb-artifact:///team-remote/rag-remote/climate-rag-chat:v0',
      chatModelRegistry: 'wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag:v0',
    });
    const linked = await remote.store.registry.versions(
      'wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag',
    );
    expect(linked.map((version) => [version.version, [...version.aliases].sort()])).toEqual([
      [0, ['candidate', 'latest']],
    ]);
    expect((await remote.store.artifacts.get(linked[0]!.artifact.ref)).ref).toBe(
      'wandb-artifact:///team-remote/rag-remote/climate-rag-chat:v0',
    );
    expect(await publish(publisher)).toEqual(result);
    expect(
      await remote.store.registry.versions('wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag'),
    ).toHaveLength(1);
  });

  it('a 503 or an unreachable server is a retryable failure (the activity retries, the run waits)', async () => {
    // A second fine-tune of the app, not yet in W&B.
    const run = await store.runs.create({ jobType: 'fine-tune', config: { steps: 24 } });
    const logged = await store.artifacts.log({
      name: 'climate-rag-chat',
      type: 'model',
      files: [{ path: 'model.onnx', content: Buffer.alloc(1000, 9) }],
      runId: run.id,
    });
    await store.runs.finish(run.id, { state: 'finished' });
    const second = (
      await store.registry.link({ artifact: logged.ref, target: chatModelCollectionRef('weft', 'climate-rag') })
    ).ref;
    const publisher = new WandbPublisher(store, selectWandbRemote(environment(), { project: 'rag-demo' }).config!);
    proxy.decide = () => ({ action: 'answer', status: 503, body: { errors: [{ message: 'upstream busy' }] } });
    const busy = await publish(publisher, second).catch((error: unknown) => error);
    // Not an ApplicationFailure: the activity's retry policy retries it.
    expect(busy).not.toBeInstanceOf(ApplicationFailure);
    expect(busy).toMatchObject({ retryable: true, name: 'WandbUnavailableError' });
    expect((busy as Error).message).toMatch(/answered 503 while trying to create the run .*; retrying/);

    proxy.decide = () => ({ action: 'forward' });
    await remote.stop();
    const down = await publish(publisher, second).catch((error: unknown) => error);
    expect(down).toMatchObject({ retryable: true, name: 'WandbUnavailableError' });
    expect((down as Error).message).toMatch(/unreachable/);
    await remote.restart();
    proxy.upstream = remote.url;
    const result = await publish(publisher, second);
    expect(result.refs).toMatchObject({
      chatModelArtifact: 'wandb-artifact:///team-remote/rag-remote/climate-rag-chat:v1',
      chatModelRegistry: 'wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag:v1',
    });
    const linked = await remote.store.registry.versions(
      'wandb-artifact:///weft/wandb-registry-RAG Chat Models/climate-rag',
    );
    // `candidate` moved to the newest fine-tune.
    expect(linked.map((version) => [version.version, version.aliases.filter((alias) => alias !== 'latest')])).toEqual([
      [0, []],
      [1, ['candidate']],
    ]);
  });

  it('never moves production over a newer champion in W&B: the run ends superseded, nothing moves, here or there', async () => {
    const publisher = (await openWandbPublisher(store, environment(), { project: 'rag-demo' }, quiet))!;
    const registry = createRegistryActivities({ store, org: 'weft', wandb: publisher });
    const ragModel = await store.objects.publish({
      name: 'RagModel',
      value: { _type: 'RagModel', _class_name: 'RagModel', _bases: ['Model', 'Object'], prompt: 'answer briefly' },
    });
    const promotion = {
      app: 'climate-rag',
      ragModelRef: ragModel.ref,
      workflowId: 'wf-publish',
      expectedProductionRef: null,
      gate: {
        decision: 'pass' as const,
        metric: 'f1',
        challengerMean: 0.5,
        championMean: null,
        difference: null,
        ciLow: null,
        ciHigh: null,
        margin: 0,
        reason: 'no champion',
      },
    };
    // Someone published a champion into W&B directly (the seed's notebook): production points at it.
    const theirs = await remote.store.artifacts.log({
      entity: 'team-remote',
      project: 'rag-remote',
      name: 'RagModel',
      type: 'rag-model',
      metadata: { url: 'weave:///team-remote/rag-remote/object/RagModel:theirs' },
      references: [{ uri: 'weave:///team-remote/rag-remote/object/RagModel:theirs', path: 'model' }],
    });
    const target = 'wandb-artifact:///weft/wandb-registry-RAG Models/RAG Model';
    const link = await remote.store.registry.link({ artifact: theirs.ref, target });
    await remote.store.registry.moveAlias(target, { alias: 'production', to: link.version, expected: null });

    const failure = await new MockActivityEnvironment()
      .run(registry.promoteRagModel, promotion)
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).type).toBe(errorTypes.aliasConflict);
    expect((failure as ApplicationFailure).message).toMatch(
      /production of weft\/wandb-registry-RAG Models\/RAG Model in W&B points at v0, which weft did not publish/,
    );
    // Checked before the local move: the local production did not move either.
    await expect(
      store.registry.resolve(`${ragModelCollectionRef('weft', 'climate-rag')}:production`),
    ).rejects.toThrow();
    expect((await remote.store.registry.resolve(`${target}:production`)).artifact.ref).toBe(theirs.ref);

    // Another app, without a production in W&B yet: publishing moves it once; a retry changes nothing.
    const other = { ...promotion, app: 'legal-rag', workflowId: 'wf-publish-2' };
    const published: { wandb?: Record<string, string> } = await new MockActivityEnvironment().run(
      registry.promoteRagModel,
      other,
    );
    expect(published.wandb).toMatchObject({
      ragModelRegistry: 'wandb-artifact:///weft/wandb-registry-RAG Models/legal-rag:v0',
      production: 'wandb-artifact:///weft/wandb-registry-RAG Models/legal-rag:production',
    });
    const again = await new MockActivityEnvironment().run(registry.promoteRagModel, other);
    expect(again).toEqual(published);
    expect(
      await remote.store.registry.aliasHistory(
        'wandb-artifact:///weft/wandb-registry-RAG Models/legal-rag',
        'production',
      ),
    ).toHaveLength(1);
    const artifact = await remote.store.artifacts.get(
      'wandb-artifact:///team-remote/rag-remote/legal-rag-rag-model:v0',
    );
    expect(artifact.aliases).toContain(published.wandb!.ragModel!.split(':').pop());
    expect(artifact.metadata.weft_rag_model).toBe(ragModel.ref);
  });
});
