import fs from 'node:fs';
import path from 'node:path';
import {
  AliasConflictError,
  ArtifactTypeMismatchError,
  CorruptBlobError,
  IdempotencyKeyReuseError,
  type LineageStore,
} from '../../lib/lineage';
import { BACKENDS, createTestLocation, openTestStore, type TestLocation } from './support/test-backends';

const CHAT_COLLECTION = 'wandb-artifact:///weft/wandb-registry-RAG Chat Models/chat-model';

describe.each(BACKENDS)('lineage store on %s', (backend) => {
  let location: TestLocation;
  let store: LineageStore;

  beforeAll(async () => {
    location = await createTestLocation(backend);
    store = await openTestStore(location, { limits: { largeCallValueBytes: 256 } });
  });

  afterAll(async () => {
    await store?.close();
    await location?.dispose();
  });

  describe('objects', () => {
    it('numbers versions per name, dedupes identical values and moves latest', async () => {
      const first = await store.objects.publish({ name: 'Prompt', value: { template: 'Answer: {q}' } });
      const again = await store.objects.publish({ name: 'Prompt', value: { template: 'Answer: {q}' } });
      const second = await store.objects.publish({ name: 'Prompt', value: { template: 'Briefly: {q}' } });
      expect(first).toMatchObject({ version: 0, created: true });
      expect(again).toEqual({ ...first, created: false });
      expect(second).toMatchObject({ version: 1, created: true });
      const latest = await store.objects.latest('Prompt');
      expect(latest.ref).toBe(second.ref);
      expect(latest.isLatest).toBe(true);
      expect((await store.objects.get(first.ref)).isLatest).toBe(false);
      expect((await store.objects.get('weave:///weft/rag-demo/object/Prompt:v0')).digest).toBe(first.digest);
      expect((await store.objects.versions('Prompt')).map((version) => version.version)).toEqual([0, 1]);
    });

    it('resolves a RagModel’s ChatModel ref on demand', async () => {
      const chat = await store.objects.publish({ name: 'ChatModel', value: { temperature: 0.2, max_new_tokens: 128 } });
      const rag = await store.objects.publish({ name: 'RagModel', value: { chat_model: chat.ref, top_k: 4 } });
      expect((await store.objects.get(rag.ref)).value).toEqual({ chat_model: chat.ref, top_k: 4 });
      expect((await store.objects.get(rag.ref, { resolveDepth: 1 })).value).toEqual({
        chat_model: { temperature: 0.2, max_new_tokens: 128 },
        top_k: 4,
      });
      const listed = await store.objects.list();
      expect(listed.find((summary) => summary.name === 'RagModel')).toMatchObject({
        versionCount: 1,
        latestRef: rag.ref,
      });
    });
  });

  describe('datasets', () => {
    it('stores rows once: republishing after one changed row writes one row', async () => {
      const rows = Array.from({ length: 500 }, (_, index) => ({ question: `q${index}`, answer: `a${index}` }));
      const first = await store.datasets.publish({ name: 'qa-set', rows });
      expect(first).toMatchObject({ version: 0, rowCount: 500, newRowCount: 500 });
      const changed = rows.map((row, index) => (index === 250 ? { ...row, answer: 'changed' } : row));
      const second = await store.datasets.publish({ name: 'qa-set', rows: changed });
      expect(second).toMatchObject({ version: 1, rowCount: 500, newRowCount: 1 });
      const same = await store.datasets.publish({ name: 'qa-set', rows: changed });
      expect(same).toMatchObject({ version: 1, created: false, newRowCount: 0 });
      const read = await store.datasets.rows(second.ref, { offset: 249, limit: 3 });
      expect(read).toEqual([rows[249], { question: 'q250', answer: 'changed' }, rows[251]]);

      // A patch hashes and writes only the changed rows, and lands on the same digest as publishing all rows.
      const patched = await store.datasets.patch({
        ref: second.ref,
        replace: { 10: { question: 'q10', answer: 'patched' } },
        remove: [0],
        append: [{ question: 'new', answer: 'row' }],
      });
      expect(patched).toMatchObject({ version: 2, created: true, rowCount: 500, newRowCount: 2 });
      const expectedRows = [...changed.slice(1)];
      expectedRows[9] = { question: 'q10', answer: 'patched' };
      expectedRows.push({ question: 'new', answer: 'row' });
      expect(await store.datasets.rows(patched.ref)).toEqual(expectedRows);
      const republished = await store.datasets.publish({ name: 'qa-set', rows: expectedRows });
      expect(republished).toMatchObject({ ref: patched.ref, created: false, newRowCount: 0 });
    });
  });

  describe('artifacts', () => {
    it('logs versions, dedupes by manifest digest and downloads verified files', async () => {
      const weights = path.join(location.folder, 'weights.bin');
      fs.writeFileSync(weights, Buffer.alloc(100_000, 7));
      const logged = await store.artifacts.log({
        name: 'chat-model',
        type: 'model',
        metadata: { base_model: 'tiny' },
        files: [
          { path: 'model/weights.bin', localPath: weights },
          { path: 'model/config.json', content: '{"layers": 2}' },
        ],
        references: [{ uri: 'weave:///weft/rag-demo/object/Prompt:latest', path: 'prompt' }],
      });
      expect(logged).toMatchObject({ ref: 'wandb-artifact:///weft/rag-demo/chat-model:v0', version: 0, created: true });
      const same = await store.artifacts.log({
        name: 'chat-model',
        type: 'model',
        files: [
          { path: 'model/config.json', content: '{"layers": 2}' },
          { path: 'model/weights.bin', localPath: weights },
        ],
        references: [{ uri: 'weave:///weft/rag-demo/object/Prompt:latest', path: 'prompt' }],
      });
      expect(same).toEqual({ ...logged, created: false });
      const next = await store.artifacts.log({
        name: 'chat-model',
        type: 'model',
        files: [{ path: 'model/config.json', content: '{"layers": 3}' }],
      });
      expect(next.version).toBe(1);
      expect((await store.artifacts.get('wandb-artifact:///weft/rag-demo/chat-model:latest')).version).toBe(1);
      const version = await store.artifacts.get(logged.ref);
      expect(version.aliases).toEqual([]);
      expect(version.size).toBe(100_000 + 13);
      const target = path.join(location.folder, 'download');
      const result = await store.artifacts.download(logged.ref, target);
      expect(result.files.map((file) => path.relative(target, file)).sort()).toEqual([
        'model/config.json',
        'model/weights.bin',
      ]);
      expect(fs.readFileSync(path.join(target, 'model/weights.bin')).equals(fs.readFileSync(weights))).toBe(true);
      expect(result.references).toEqual([
        { path: 'prompt', ref: 'weave:///weft/rag-demo/object/Prompt:latest', size: 0 },
      ]);
    });

    it('rejects a different type for an existing name', async () => {
      await expect(
        store.artifacts.log({ name: 'chat-model', type: 'dataset', files: [{ path: 'x', content: 'x' }] }),
      ).rejects.toThrow(ArtifactTypeMismatchError);
    });

    it('moves a custom alias by compare-and-set', async () => {
      const collection = 'wandb-artifact:///weft/rag-demo/chat-model';
      expect(await store.artifacts.moveAlias(collection, { alias: 'best', to: 'v0', expected: null })).toMatchObject({
        moved: true,
      });
      await expect(store.artifacts.moveAlias(collection, { alias: 'best', to: 'v1', expected: null })).rejects.toThrow(
        AliasConflictError,
      );
      expect(await store.artifacts.moveAlias(collection, { alias: 'best', to: 'v1', expected: 'v0' })).toMatchObject({
        fromVersion: 0,
        toVersion: 1,
      });
      expect((await store.artifacts.get(`${collection}:best`)).version).toBe(1);
      expect((await store.artifacts.get(`${collection}:v1`)).aliases).toEqual(['latest', 'best']);
    });

    it('refuses to download a blob altered on disk and leaves no file behind', async () => {
      const logged = await store.artifacts.log({
        name: 'corruptible',
        type: 'model',
        files: [{ path: 'w.bin', content: 'original content' }],
      });
      const version = await store.artifacts.get(logged.ref);
      const blobPath = path.join(
        location.blobDirectory,
        'sha256',
        version.manifest[0]!.digest!.slice(0, 2),
        version.manifest[0]!.digest!.slice(2, 4),
        version.manifest[0]!.digest!,
      );
      fs.writeFileSync(blobPath, 'tampered content');
      const target = path.join(location.folder, 'corrupt-download');
      await expect(store.artifacts.download(logged.ref, target)).rejects.toThrow(CorruptBlobError);
      expect(fs.existsSync(path.join(target, 'w.bin'))).toBe(false);
      fs.writeFileSync(blobPath, 'original content');
    });
  });

  describe('registry', () => {
    it('links versions idempotently and moves production with a history', async () => {
      const v0 = 'wandb-artifact:///weft/rag-demo/chat-model:v0';
      const v1 = 'wandb-artifact:///weft/rag-demo/chat-model:v1';
      const first = await store.registry.link({
        artifact: v0,
        target: CHAT_COLLECTION,
        actor: 'alice',
        workflowId: 'wf-1',
      });
      const repeat = await store.registry.link({ artifact: v0, target: CHAT_COLLECTION });
      const second = await store.registry.link({
        artifact: 'wandb-artifact:///weft/rag-demo/chat-model:best',
        target: CHAT_COLLECTION,
      });
      expect(first).toEqual({ ref: `${CHAT_COLLECTION}:v0`, version: 0, created: true });
      expect(repeat).toEqual({ ...first, created: false });
      expect(second.ref).toBe(`${CHAT_COLLECTION}:v1`);
      expect((await store.registry.resolve(`${CHAT_COLLECTION}:v1`)).artifact.ref).toBe(v1);

      await store.registry.moveAlias(CHAT_COLLECTION, {
        alias: 'production',
        to: 'v0',
        expected: null,
        actor: 'alice',
        workflowId: 'wf-1',
      });
      const conflict = store.registry.moveAlias(CHAT_COLLECTION, { alias: 'production', to: 'v1', expected: null });
      await expect(conflict).rejects.toThrow(/points at v0, not nothing as expected/);
      const moved = await store.registry.moveAlias(CHAT_COLLECTION, {
        alias: 'production',
        to: 1,
        expected: 0,
        actor: 'bob',
        workflowId: 'wf-2',
      });
      const retried = await store.registry.moveAlias(CHAT_COLLECTION, {
        alias: 'production',
        to: 1,
        expected: 0,
        actor: 'bob',
        workflowId: 'wf-2',
      });
      expect(moved).toEqual({ alias: 'production', fromVersion: 0, toVersion: 1, moved: true });
      expect(retried).toEqual({ alias: 'production', fromVersion: 1, toVersion: 1, moved: false });
      const history = await store.registry.aliasHistory(CHAT_COLLECTION, 'production');
      expect(
        history.map(({ fromVersion, toVersion, actor, workflowId }) => ({ fromVersion, toVersion, actor, workflowId })),
      ).toEqual([
        { fromVersion: null, toVersion: 0, actor: 'alice', workflowId: 'wf-1' },
        { fromVersion: 0, toVersion: 1, actor: 'bob', workflowId: 'wf-2' },
      ]);
      const production = await store.registry.resolve(`${CHAT_COLLECTION}:production`);
      expect(production).toMatchObject({ version: 1, aliases: ['latest', 'production'] });
      // A registry ref stands for the artifact version it links, as in W&B: get and download take it directly.
      expect((await store.artifacts.get(`${CHAT_COLLECTION}:production`)).ref).toBe(v1);
      const downloaded = await store.artifacts.download(
        `${CHAT_COLLECTION}:production`,
        path.join(location.folder, 'production'),
      );
      expect(fs.readFileSync(path.join(location.folder, 'production', 'model/config.json'), 'utf8')).toBe(
        '{"layers": 3}',
      );
      expect(downloaded.files).toHaveLength(1);
      const shown = await store.registry.show('RAG Chat Models');
      expect(shown.collections).toEqual([
        expect.objectContaining({ name: 'chat-model', type: 'model', versionCount: 2, aliases: ['production=v1'] }),
      ]);
    });

    it('promote moves an alias in one operation: compare-and-set, or from wherever it points', async () => {
      const v0 = (
        await store.artifacts.log({ name: 'promoted-model', type: 'model', files: [{ path: 'a', content: '0' }] })
      ).ref;
      const v1 = (
        await store.artifacts.log({ name: 'promoted-model', type: 'model', files: [{ path: 'a', content: '1' }] })
      ).ref;
      const collection = 'wandb-artifact:///weft/wandb-registry-RAG Chat Models/promotions';
      await store.registry.link({ artifact: v0, target: collection });
      await store.registry.link({ artifact: v1, target: collection });
      const promote = (version: number, expected: number | null | 'any') =>
        store.registry.promote({ collection: collection, version, alias: 'candidate', expected, actor: 'ci' });
      expect(await promote(0, 'any')).toEqual({ alias: 'candidate', fromVersion: null, toVersion: 0, moved: true });
      expect(await promote(1, 'any')).toEqual({ alias: 'candidate', fromVersion: 0, toVersion: 1, moved: true });
      await expect(promote(0, null)).rejects.toThrow(/points at v1, not nothing as expected/);
      expect(await promote(0, 1)).toMatchObject({ fromVersion: 1, toVersion: 0, moved: true });
      expect(await promote(0, 1)).toMatchObject({ toVersion: 0, moved: false });
      await expect(
        store.registry.promote({
          collection: `${collection}:v0`,
          version: 1,
          alias: 'candidate',
          expected: 'any',
        }),
      ).rejects.toThrow(/names a version; pass the collection itself/);
      expect((await store.registry.aliasHistory(collection, 'candidate')).map((move) => move.toVersion)).toEqual([
        0, 1, 0,
      ]);
    });

    it('keeps a collection to one artifact type and a registry to its declared types', async () => {
      await store.artifacts.log({ name: 'eval-set', type: 'dataset', files: [{ path: 'rows.jsonl', content: '{}' }] });
      await expect(
        store.registry.link({ artifact: 'wandb-artifact:///weft/rag-demo/eval-set:v0', target: CHAT_COLLECTION }),
      ).rejects.toThrow(/accepts type "model"; .* has type "dataset"/);
      await store.registry.create({ name: 'RAG Models', artifactTypes: ['rag-app'] });
      await expect(
        store.registry.link({
          artifact: 'wandb-artifact:///weft/rag-demo/eval-set:v0',
          target: 'wandb-artifact:///weft/wandb-registry-RAG Models/app',
        }),
      ).rejects.toThrow(/accepts artifact types "rag-app"/);
    });
  });

  describe('runs and lineage', () => {
    it('answers what produced a version and where it is used', async () => {
      const train = await store.runs.create({ id: 'run-train-1', jobType: 'fine-tune', config: { lr: 0.0002 } });
      expect(await store.runs.create({ id: 'run-train-1', jobType: 'fine-tune' })).toEqual(train);
      await store.artifacts.use('wandb-artifact:///weft/rag-demo/eval-set:v0', { runId: train.id });
      const model = await store.artifacts.log({
        name: 'tuned',
        type: 'model',
        runId: train.id,
        files: [{ path: 'w', content: 'tuned' }],
      });
      await store.runs.finish(train.id, { summary: { loss: 0.12 } });
      const evaluate = await store.runs.create({ id: 'run-eval-1', jobType: 'evaluate' });
      await store.artifacts.use(model.ref, { runId: evaluate.id });
      await store.registry.link({ artifact: model.ref, target: CHAT_COLLECTION });

      const upstream = await store.lineage.walk(model.ref, { direction: 'upstream' });
      expect(upstream.edges).toEqual(
        expect.arrayContaining([
          { from: 'run:run-train-1', to: model.ref, relation: 'output' },
          { from: 'wandb-artifact:///weft/rag-demo/eval-set:v0', to: 'run:run-train-1', relation: 'input' },
        ]),
      );
      const downstream = await store.lineage.walk(model.ref, { direction: 'downstream' });
      expect(downstream.edges).toEqual(
        expect.arrayContaining([
          { from: model.ref, to: 'run:run-eval-1', relation: 'input' },
          { from: model.ref, to: `${CHAT_COLLECTION}:v2`, relation: 'link' },
        ]),
      );
      expect(downstream.edges.some((edge) => edge.relation === 'output')).toBe(false);

      // Objects that hold the version's ref are where it is used too: model → ChatModel → RagModel.
      const chat = await store.objects.publish({ name: 'TunedChat', value: { model: model.ref, temperature: 0.1 } });
      const rag = await store.objects.publish({ name: 'TunedRag', value: { chat_model: chat.ref } });
      const usedBy = await store.lineage.walk(model.ref, { direction: 'downstream' });
      expect(usedBy.edges).toEqual(
        expect.arrayContaining([
          { from: model.ref, to: chat.ref, relation: 'reference' },
          { from: chat.ref, to: rag.ref, relation: 'reference' },
        ]),
      );
      expect((await store.runs.get(train.id)).summary).toEqual({ loss: 0.12 });

      // From an object: upstream what its value names (back to the run and its input), downstream the objects that
      // hold it and the reference artifact that publishes it, up to its registry version.
      const published = await store.artifacts.log({
        name: 'tuned-rag-model',
        type: 'model',
        references: [{ uri: rag.ref, path: 'rag-model' }],
      });
      await store.registry.link({ artifact: published.ref, target: CHAT_COLLECTION });
      const result = await store.objects.publish({ name: 'Result', value: { model: rag.ref, rows: [] } });
      const ofRag = await store.lineage.walk(rag.ref);
      expect(ofRag.root).toBe(rag.ref);
      expect(ofRag.edges).toEqual(
        expect.arrayContaining([
          { from: chat.ref, to: rag.ref, relation: 'reference' },
          { from: model.ref, to: chat.ref, relation: 'reference' },
          { from: 'run:run-train-1', to: model.ref, relation: 'output' },
          { from: 'wandb-artifact:///weft/rag-demo/eval-set:v0', to: 'run:run-train-1', relation: 'input' },
          { from: rag.ref, to: result.ref, relation: 'reference' },
          { from: rag.ref, to: published.ref, relation: 'reference' },
          { from: published.ref, to: `${CHAT_COLLECTION}:v3`, relation: 'link' },
        ]),
      );
      expect(ofRag.nodes.find((node) => node.id === rag.ref)).toMatchObject({ kind: 'object' });
      // Upstream only: nothing downstream of the RagModel.
      const upstreamOnly = await store.lineage.walk(rag.ref, { direction: 'upstream' });
      expect(upstreamOnly.nodes.map((node) => node.id)).not.toContain(result.ref);
      await expect(store.lineage.walk('weave:///weft/rag-demo/object/TunedRag:nosuchdigest')).rejects.toThrow(
        /nosuchdigest/,
      );
    });
  });

  describe('calls', () => {
    it('upserts idempotently, queries by op, attribute and time, and stores feedback', async () => {
      const start = '2026-01-01T00:00:00.000Z';
      const call = {
        id: 'call-1',
        opName: 'RagModel.predict',
        traceId: 'trace-1',
        startedAt: start,
        inputs: { question: 'hi' },
        attributes: { 'wandb-run-id': 'run-eval-1', 'activity-attempt': 1 },
      };
      await store.calls.upsert(call);
      await store.calls.upsert(call);
      await store.calls.upsert({ ...call, endedAt: '2026-01-01T00:00:01.000Z', output: { answer: 'hello' } });
      await store.calls.upsert({
        id: 'call-2',
        opName: 'score',
        traceId: 'trace-1',
        parentId: 'call-1',
        startedAt: '2026-01-02T00:00:00.000Z',
        attributes: { 'wandb-run-id': 'other' },
      });
      const byAttribute = await store.calls.query({ attributes: { 'wandb-run-id': 'run-eval-1' } });
      expect(byAttribute.map((record) => record.id)).toEqual(['call-1']);
      expect(byAttribute[0]).toMatchObject({
        output: { answer: 'hello' },
        endedAt: '2026-01-01T00:00:01.000Z',
        attributes: { 'activity-attempt': 1 },
      });
      expect((await store.calls.query({ opName: 'score' })).map((record) => record.parentId)).toEqual(['call-1']);
      expect((await store.calls.query({ startedAfter: '2026-01-01T12:00:00Z' })).map((record) => record.id)).toEqual([
        'call-2',
      ]);
      const counts = await store.counts();
      expect(counts.calls).toBe(2);

      const feedback = await store.calls.addFeedback({
        call: byAttribute[0]!.ref,
        type: 'score',
        payload: { correctness: 1 },
        idempotencyKey: 'wf-1:score:call-1',
      });
      const retried = await store.calls.addFeedback({
        call: byAttribute[0]!.ref,
        type: 'score',
        payload: { correctness: 1 },
        idempotencyKey: 'wf-1:score:call-1',
      });
      expect(retried.id).toBe(feedback.id);
      expect(await store.calls.feedback(byAttribute[0]!.ref)).toHaveLength(1);
      await expect(
        store.calls.addFeedback({
          call: byAttribute[0]!.ref,
          type: 'score',
          payload: { correctness: 0 },
          idempotencyKey: 'wf-1:score:call-1',
        }),
      ).rejects.toThrow(IdempotencyKeyReuseError);
    });

    it('stores large inputs and outputs as object refs', async () => {
      const big = 'x'.repeat(1000);
      const record = await store.calls.upsert({
        id: 'call-big',
        opName: 'embed',
        traceId: 'trace-2',
        startedAt: new Date().toISOString(),
        inputs: { text: big, k: 1 },
        output: { vector: big },
      });
      expect(record.inputs.k).toBe(1);
      expect(record.inputs.text).toMatch(/^weave:\/\/\/weft\/rag-demo\/object\/CallValue:/);
      expect(await store.objects.resolve(record.inputs.text as string)).toBe(big);
      expect(await store.objects.resolve(record.output as string)).toEqual({ vector: big });
    });
  });
});
