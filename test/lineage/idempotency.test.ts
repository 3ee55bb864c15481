import { idempotencyKeyFor, InProcessIdempotency, type LineageStore } from '../../lib/lineage';
import { BACKENDS, createTestLocation, openTestStore, type TestLocation } from './support/test-backends';

describe('in-process idempotency', () => {
  it('runs concurrent calls with one key once and remembers the result', async () => {
    const idempotency = new InProcessIdempotency();
    let runs = 0;
    const work = async () => {
      runs++;
      await new Promise((resolve) => setImmediate(resolve));
      return `result ${runs}`;
    };
    const results = await Promise.all([idempotency.run('k', work), idempotency.run('k', work)]);
    expect(results).toEqual(['result 1', 'result 1']);
    expect(await idempotency.run('k', work)).toBe('result 1');
    expect(runs).toBe(1);
  });

  it('runs the work again after a failure', async () => {
    const idempotency = new InProcessIdempotency();
    await expect(idempotency.run('k', () => Promise.reject(new Error('busy')))).rejects.toThrow('busy');
    expect(await idempotency.run('k', async () => 'second try')).toBe('second try');
  });

  it('builds keys from workflow id, step and content digest', () => {
    expect(idempotencyKeyFor('wf-7', 'register', 'abc')).toBe('wf-7:register:abc');
  });
});

describe.each(BACKENDS)('stored idempotency keys on %s', (backend) => {
  let location: TestLocation;
  let store: LineageStore;

  beforeAll(async () => {
    location = await createTestLocation(backend);
    store = await openTestStore(location);
  });

  afterAll(async () => {
    await store?.close();
    await location?.dispose();
  });

  it('gives a retried run start the first run instead of a second one', async () => {
    const first = await store.runs.create({ jobType: 'evaluate', idempotencyKey: 'wf-1:start-evaluation' });
    const retried = await store.runs.create({ jobType: 'evaluate', idempotencyKey: 'wf-1:start-evaluation' });
    expect(retried.id).toBe(first.id);
    expect((await store.counts()).runs).toBe(1);
  });

  it('survives reopening the store (a retry from another process)', async () => {
    const first = await store.registry.create({ name: 'RAG Models' });
    await store.artifacts.log({ name: 'app', type: 'rag-app', files: [{ path: 'app.json', content: '{}' }] });
    const link = await store.registry.link({
      artifact: 'wandb-artifact:///weft/rag-demo/app:v0',
      target: `wandb-artifact:///weft/wandb-registry-${first.name}/app`,
      idempotencyKey: 'wf-2:link',
    });
    const reopened = await openTestStore(location);
    try {
      const again = await reopened.registry.link({
        artifact: 'wandb-artifact:///weft/rag-demo/app:v0',
        target: `wandb-artifact:///weft/wandb-registry-${first.name}/app`,
        idempotencyKey: 'wf-2:link',
      });
      expect(again).toEqual(link);
    } finally {
      await reopened.close();
    }
  });
});
