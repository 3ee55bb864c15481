import fs from 'node:fs';
import path from 'node:path';
import {
  AliasConflictError,
  ArtifactTypeMismatchError,
  CorruptBlobError,
  IdempotencyKeyReuseError,
  InvalidNameError,
  InvalidRefError,
  InvalidValueError,
  NotFoundError,
  openLineageStore,
  StoreConfigurationError,
  ValueTooLargeError,
  type LineageError,
  type LineageStore,
} from '../../lib/lineage';
import { BACKENDS, createTestLocation, openTestStore, type TestLocation } from './support/test-backends';

const MODEL = 'wandb-artifact:///weft/rag-demo/chat-model';
const CHAT = 'wandb-artifact:///weft/wandb-registry-RAG Chat Models/chat';

type ErrorClass = abstract new (...args: never[]) => LineageError;
interface BadInputCase {
  name: string;
  attempt: (store: LineageStore, location: TestLocation) => Promise<unknown>;
  error: ErrorClass;
  message: RegExp;
}

const circular: Record<string, unknown> = { a: 1 };
circular.self = circular;

const CASES: BadInputCase[] = [
  {
    name: 'artifact ref without the third slash',
    attempt: (s) => s.artifacts.get('wandb-artifact://weft/rag-demo/chat-model:v0'),
    error: InvalidRefError,
    message: /unknown scheme/,
  },
  {
    name: 'weave ref where an artifact ref belongs',
    attempt: (s) => s.artifacts.get('weave:///weft/rag-demo/object/X:abc'),
    error: InvalidRefError,
    message: /is an object ref; expected an artifact or registry ref/,
  },
  {
    name: 'artifact ref where an object ref belongs',
    attempt: (s) => s.objects.get(`${MODEL}:v0`),
    error: InvalidRefError,
    message: /is an artifact ref; expected an object ref/,
  },
  {
    name: 'ref with path traversal',
    attempt: (s) => s.artifacts.get('wandb-artifact:///weft/../chat-model:v0'),
    error: InvalidRefError,
    message: /contains "\.\."/,
  },
  {
    name: 'version with leading zeros',
    attempt: (s) => s.artifacts.get(`${MODEL}:v007`),
    error: InvalidRefError,
    message: /leading zeros/,
  },
  {
    name: 'empty object name',
    attempt: (s) => s.objects.publish({ name: '', value: 1 }),
    error: InvalidNameError,
    message: /object name is empty/,
  },
  {
    name: 'object name with ..',
    attempt: (s) => s.objects.publish({ name: 'a..b', value: 1 }),
    error: InvalidNameError,
    message: /contains "\.\."/,
  },
  {
    name: 'object name with a slash',
    attempt: (s) => s.objects.publish({ name: 'a/b', value: 1 }),
    error: InvalidNameError,
    message: /path separator/,
  },
  {
    name: 'object name with a newline',
    attempt: (s) => s.objects.publish({ name: 'a\nb', value: 1 }),
    error: InvalidNameError,
    message: /control character U\+000A/,
  },
  {
    name: 'object name too long',
    attempt: (s) => s.objects.publish({ name: 'n'.repeat(300), value: 1 }),
    error: InvalidNameError,
    message: /300 characters long; the limit is 128/,
  },
  {
    name: 'entity with a space',
    attempt: (s) => s.objects.publish({ entity: 'my team', name: 'X', value: 1 }),
    error: InvalidNameError,
    message: /entity "my team" contains the character " "/,
  },
  {
    name: 'value holding a function',
    attempt: (s) => s.objects.publish({ name: 'X', value: { run: () => 1 } }),
    error: InvalidValueError,
    message: /value at run is a function/,
  },
  {
    name: 'value holding NaN',
    attempt: (s) => s.objects.publish({ name: 'X', value: { score: NaN } }),
    error: InvalidValueError,
    message: /value at score is NaN; only finite numbers/,
  },
  {
    name: 'circular value',
    attempt: (s) => s.objects.publish({ name: 'X', value: circular }),
    error: InvalidValueError,
    message: /refers back to itself/,
  },
  {
    name: 'value holding a Date',
    attempt: (s) => s.objects.publish({ name: 'X', value: { at: new Date(0) } }),
    error: InvalidValueError,
    message: /is a Date; store plain objects only \(dates as ISO strings/,
  },
  {
    name: 'oversized value',
    attempt: (s) => s.objects.publish({ name: 'X', value: 'x'.repeat(5000) }),
    error: ValueTooLargeError,
    message: /is 5002 bytes; the limit is 4096/,
  },
  {
    name: 'value holding a malformed nested ref',
    attempt: (s) => s.objects.publish({ name: 'X', value: { chat: 'weave:///weft/rag-demo/op/predict:abc' } }),
    error: InvalidRefError,
    message: /accepted kinds are object, table and call/,
  },
  {
    name: 'object that does not exist',
    attempt: (s) => s.objects.get('weave:///weft/rag-demo/object/Missing:latest'),
    error: NotFoundError,
    message: /does not exist; list versions/,
  },
  {
    name: 'artifact file path with ..',
    attempt: (s) => s.artifacts.log({ name: 'm', type: 'model', files: [{ path: '../secret', content: 'x' }] }),
    error: InvalidValueError,
    message: /could escape the download folder/,
  },
  {
    name: 'absolute artifact file path',
    attempt: (s) => s.artifacts.log({ name: 'm', type: 'model', files: [{ path: '/etc/passwd', content: 'x' }] }),
    error: InvalidValueError,
    message: /is absolute/,
  },
  {
    name: 'two files at one path',
    attempt: (s) =>
      s.artifacts.log({
        name: 'm',
        type: 'model',
        files: [
          { path: 'a', content: 'x' },
          { path: 'a', content: 'y' },
        ],
      }),
    error: InvalidValueError,
    message: /two entries at "a"/,
  },
  {
    name: 'local file that does not exist',
    attempt: (s) =>
      s.artifacts.log({ name: 'm', type: 'model', files: [{ path: 'a', localPath: '/nonexistent/weights.bin' }] }),
    error: InvalidValueError,
    message: /does not exist; pass an existing file/,
  },
  {
    name: 'reference with an unsupported scheme',
    attempt: (s) => s.artifacts.log({ name: 'm', type: 'model', references: [{ uri: 'ftp://host/file' }] }),
    error: InvalidValueError,
    message: /unsupported scheme; use one of weave:\/\/\/…, file:\/\/\/…, s3:\/\/…, gs:\/\/…/,
  },
  {
    name: 'wrong artifact type for an existing name',
    attempt: (s) =>
      s.artifacts.log({ name: 'chat-model', type: 'dataset', files: [{ path: 'new', content: 'new content' }] }),
    error: ArtifactTypeMismatchError,
    message: /holds type "model", not "dataset"/,
  },
  {
    name: 'artifact logged into a run that does not exist',
    attempt: (s) =>
      s.artifacts.log({
        name: 'm',
        type: 'model',
        runId: 'no-such-run',
        files: [{ path: 'a', content: 'run content' }],
      }),
    error: NotFoundError,
    message: /run no-such-run does not exist/,
  },
  {
    name: 'metadata that is an array',
    attempt: (s) => s.artifacts.log({ name: 'm', type: 'model', metadata: [] as unknown as Record<string, unknown> }),
    error: InvalidValueError,
    message: /metadata must be a plain object/,
  },
  {
    name: 'wrong artifact type for a collection',
    attempt: (s) => s.registry.link({ artifact: 'wandb-artifact:///weft/rag-demo/eval-set:v0', target: CHAT }),
    error: ArtifactTypeMismatchError,
    message: /accepts type "model"; .* has type "dataset"/,
  },
  {
    name: 'link target that names a version',
    attempt: (s) => s.registry.link({ artifact: `${MODEL}:v0`, target: `${CHAT}:v0` }),
    error: InvalidRefError,
    message: /names a version; link into the collection itself/,
  },
  {
    name: 'link target that is not a registry',
    attempt: (s) => s.registry.link({ artifact: `${MODEL}:v0`, target: MODEL }),
    error: InvalidRefError,
    message: /expected a registry ref/,
  },
  {
    name: 'link of a version that does not exist',
    attempt: (s) => s.registry.link({ artifact: `${MODEL}:v99`, target: CHAT }),
    error: NotFoundError,
    message: /has no version v99; versions are v0 … v1/,
  },
  {
    name: 'alias on a missing version',
    attempt: (s) => s.registry.moveAlias(CHAT, { alias: 'staging', to: 'v42', expected: null }),
    error: NotFoundError,
    message: /has no version v42. Log or link that version first/,
  },
  {
    name: 'moving latest by hand',
    attempt: (s) => s.registry.moveAlias(CHAT, { alias: 'latest', to: 'v0', expected: null }),
    error: InvalidNameError,
    message: /moves by itself/,
  },
  {
    name: 'alias that looks like a version',
    attempt: (s) => s.registry.moveAlias(CHAT, { alias: 'v3', to: 'v0', expected: null }),
    error: InvalidNameError,
    message: /looks like a version number/,
  },
  {
    name: 'alias move with a stale expectation',
    attempt: (s) => s.registry.moveAlias(CHAT, { alias: 'production', to: 'v1', expected: null }),
    error: AliasConflictError,
    message: /points at v0, not nothing as expected; .* retry with expected=v0/,
  },
  {
    name: 'unknown registry',
    attempt: (s) => s.registry.resolve('wandb-artifact:///weft/wandb-registry-Nope/chat:v0'),
    error: NotFoundError,
    message: /registry "Nope" does not exist .* known registries: "RAG Chat Models"/,
  },
  {
    name: 'registry name with a slash',
    attempt: (s) => s.registry.create({ name: 'Bad/Name' }),
    error: InvalidNameError,
    message: /path separator/,
  },
  {
    name: 'alias that does not exist',
    attempt: (s) => s.artifacts.get(`${MODEL}:champion`),
    error: NotFoundError,
    message: /has no alias "champion"; its aliases are latest/,
  },
  {
    name: 'corrupt blob on download',
    attempt: async (s, location) => {
      const version = await s.artifacts.get(`${MODEL}:v0`);
      const digest = version.manifest[0]!.digest!;
      const blob = path.join(location.blobDirectory, 'sha256', digest.slice(0, 2), digest.slice(2, 4), digest);
      const original = fs.readFileSync(blob);
      fs.writeFileSync(blob, 'bit rot');
      try {
        return await s.artifacts.download(`${MODEL}:v0`, path.join(location.folder, 'corrupt'));
      } finally {
        fs.writeFileSync(blob, original);
      }
    },
    error: CorruptBlobError,
    message: /is corrupt \(its SHA-256 is \w+, expected \w+\); nothing was written .* Restore the blob from backup/,
  },
  {
    name: 'call id with a space',
    attempt: (s) => s.calls.upsert({ id: 'a b', opName: 'op', traceId: 't', startedAt: new Date().toISOString() }),
    error: InvalidValueError,
    message: /call id "a b" is not allowed/,
  },
  {
    name: 'call start time that is not a time',
    attempt: (s) => s.calls.upsert({ id: 'c9', opName: 'op', traceId: 't', startedAt: 'yesterday' }),
    error: InvalidValueError,
    message: /is not a time; pass an ISO-8601 string/,
  },
  {
    name: 'feedback on a call that does not exist',
    attempt: (s) => s.calls.addFeedback({ call: 'weave:///weft/rag-demo/call/nope', type: 'score', payload: { x: 1 } }),
    error: NotFoundError,
    message: /feedback attaches to a logged call/,
  },
  {
    name: 'run id with a slash',
    attempt: (s) => s.runs.create({ id: 'a/b', jobType: 'train' }),
    error: InvalidValueError,
    message: /run id "a\/b" is not allowed/,
  },
  {
    name: 'dataset rows that are not objects',
    attempt: (s) => s.datasets.publish({ name: 'ds', rows: [1, 2] as unknown as Record<string, unknown>[] }),
    error: InvalidValueError,
    message: /row 0 is number; every row must be a plain object/,
  },
  {
    name: 'oversized table row',
    attempt: (s) => s.tables.create({ rows: [{ text: 'y'.repeat(5000) }] }),
    error: ValueTooLargeError,
    message: /Table row 0 is \d+ bytes; the limit is 4096/,
  },
  {
    name: 'idempotency key reused for another request',
    attempt: (s) => s.runs.create({ jobType: 'evaluate', idempotencyKey: 'wf-1:start-run' }),
    error: IdempotencyKeyReuseError,
    message: /first used for a different runs.create request/,
  },
  {
    name: 'dataset patch replacing a row past the end',
    attempt: (s) =>
      s.datasets.patch({ ref: 'weave:///weft/rag-demo/object/patchable:latest', replace: { 5: { q: 'b' } } }),
    error: InvalidValueError,
    message: /Cannot replace row 5: the table has rows 0 … 0. Use append for new rows./,
  },
  {
    name: 'finishing a run that does not exist',
    attempt: (s) => s.runs.finish('ghost'),
    error: NotFoundError,
    message: /run ghost does not exist/,
  },
  {
    name: 'lineage of a call ref',
    attempt: (s) => s.lineage.walk('weave:///weft/rag-demo/call/c1'),
    error: InvalidRefError,
    message: /is a call ref; expected an artifact or registry or object ref/,
  },
];

function countFiles(folder: string): number {
  if (!fs.existsSync(folder)) return 0;
  return fs.readdirSync(folder, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).length;
}

describe.each(BACKENDS)('bad input on %s', (backend) => {
  let location: TestLocation;
  let store: LineageStore;

  beforeAll(async () => {
    location = await createTestLocation(backend);
    store = await openTestStore(location, { limits: { maxValueBytes: 4096, maxRowBytes: 4096 } });
    await store.artifacts.log({ name: 'chat-model', type: 'model', files: [{ path: 'w.bin', content: 'weights v0' }] });
    await store.artifacts.log({ name: 'chat-model', type: 'model', files: [{ path: 'w.bin', content: 'weights v1' }] });
    await store.artifacts.log({ name: 'eval-set', type: 'dataset', files: [{ path: 'rows.jsonl', content: '{}' }] });
    await store.registry.link({ artifact: `${MODEL}:v0`, target: CHAT });
    await store.registry.link({ artifact: `${MODEL}:v1`, target: CHAT });
    await store.registry.moveAlias(CHAT, { alias: 'production', to: 'v0', expected: null });
    await store.runs.create({ jobType: 'train', idempotencyKey: 'wf-1:start-run' });
    await store.datasets.publish({ name: 'patchable', rows: [{ q: 'a' }] });
    await store.calls.upsert({ id: 'c1', opName: 'op', traceId: 't', startedAt: new Date().toISOString() });
  });

  afterAll(async () => {
    await store?.close();
    await location?.dispose();
  });

  it.each(CASES.map((testCase) => [testCase.name, testCase] as const))(
    '%s → a typed, non-retryable error with an actionable message; the store is unchanged',
    async (_name, testCase) => {
      const before = await store.counts();
      const blobsBefore = countFiles(location.blobDirectory);
      const failure = await testCase.attempt(store, location).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(testCase.error);
      expect((failure as LineageError).message).toMatch(testCase.message);
      expect((failure as LineageError).retryable).toBe(false);
      expect((failure as LineageError).type).toBe(testCase.error.name);
      expect(await store.counts()).toEqual(before);
      expect(countFiles(location.blobDirectory)).toBe(blobsBefore);
    },
  );
});

describe('bad store URLs', () => {
  it('rejects an unsupported scheme, naming the supported ones', async () => {
    await expect(openLineageStore('mysql://root:secret@db/lineage')).rejects.toThrow(StoreConfigurationError);
    await expect(openLineageStore('mysql://root:secret@db/lineage')).rejects.toThrow(
      /mysql:\/\/root:\*\*\*@db\/lineage is not supported; use sqlite:\/\/\/abs\/path\/lineage.db or postgres:\/\//,
    );
  });

  it('rejects a relative SQLite path', async () => {
    await expect(openLineageStore('sqlite://relative/lineage.db')).rejects.toThrow(/must hold an absolute path/);
  });
});
