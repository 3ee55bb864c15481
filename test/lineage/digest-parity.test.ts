import crypto from 'node:crypto';
import path from 'node:path';
import { bytesDigest, canonicalJson, objectDigest, rowDigest, tableDigest } from '../../lib/lineage';
import { BACKENDS, createTestLocation, openTestStore } from './support/test-backends';

/** The weave npm package's own digest module (not in its public exports, so loaded by path). */
interface WeaveDigestModule {
  computeDigest(data: Buffer): string;
  stringDigest(data: string): string;
  stringifyPythonDumps(value: unknown): string;
  valDigest(value: unknown): string;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- weave does not export dist/digest.js, so it is loaded by path
const weaveDigest = require(path.join(__dirname, '../../node_modules/weave/dist/digest.js')) as WeaveDigestModule;

const chatModel = {
  _type: 'ChatModel',
  _class_name: 'ChatModel',
  _bases: ['Model', 'Object', 'BaseModel'],
  name: 'chat',
  model: 'wandb-artifact:///weft/rag-demo/chat-model:v3',
  temperature: 0.2,
  min_p: 0.05,
  max_new_tokens: 256,
  device: null,
  stop: ['</s>', '\n\n'],
  flags: { sample: true, cache: false },
};
const ragModel = {
  _type: 'RagModel',
  chat_model: 'weave:///weft/rag-demo/object/ChatModel:HsVm2rkYf0F9yDwDtDmsnFUmCtQ0lwqzVkUd4PoV2zM',
  prompt: 'weave:///weft/rag-demo/object/Prompt:latest',
  retrieval: { top_k: 4, collection: 'docs:production', scores: [0.5, 1e-7, -3, 12345678901234] },
  text: 'quote " backslash \\ tab \t newline \n control \u0001',
};

describe('digest parity with the weave npm package', () => {
  it.each([
    ['a ChatModel', chatModel],
    ['a RagModel holding refs', ragModel],
    ['nested arrays and empty containers', { a: [[], {}, [1, [2, [3]]]], b: {} }],
    ['a scalar', 42],
    ['a string', 'hello'],
  ])('gives %s the same digest as weave valDigest', (_label, value) => {
    expect(canonicalJson(value)).toBe(weaveDigest.stringifyPythonDumps(value));
    expect(objectDigest(value)).toBe(weaveDigest.valDigest(value));
  });

  it('orders keys, so insertion order does not change the digest', () => {
    expect(objectDigest({ b: 1, a: 2 })).toBe(objectDigest({ a: 2, b: 1 }));
    expect(objectDigest({ b: 1, a: 2 })).toBe(weaveDigest.valDigest({ a: 2, b: 1 }));
  });

  it('gives files the digest weave computeDigest gives the bytes', () => {
    const bytes = crypto.randomBytes(4096);
    expect(bytesDigest(bytes)).toBe(weaveDigest.computeDigest(bytes));
  });

  it('digests table rows like weave and tables as the hex SHA-256 of the row digests (Weave server rule)', () => {
    const rows = [
      { question: 'What is weft?', answer: 'A pipeline.' },
      { question: 'Who runs it?', answer: 'Temporal.' },
    ];
    const rowDigests = rows.map(rowDigest);
    expect(rowDigests).toEqual(rows.map((row) => weaveDigest.valDigest(row)));
    const expected = crypto.createHash('sha256').update(rowDigests.join('')).digest('hex');
    expect(tableDigest(rowDigests)).toBe(expected);
  });

  it("escapes non-ASCII like Python's json.dumps, as the W&B server hashes it", () => {
    // weave's JS helper keeps "é" raw here; the Python server (ensure_ascii) writes \u00e9, and its digest is the one W&B stores.
    expect(canonicalJson({ name: 'café' })).toBe('{"name": "caf\\u00e9"}');
    expect(objectDigest({ name: 'café' })).toBe(weaveDigest.stringDigest('{"name": "caf\\u00e9"}'));
  });

  describe.each(BACKENDS)('store on %s', (backend) => {
    it('publishes objects under the digest weave computes and tables under the Weave table digest', async () => {
      const location = await createTestLocation(backend);
      const store = await openTestStore(location);
      try {
        const published = await store.objects.publish({ name: 'ChatModel', value: chatModel });
        expect(published.digest).toBe(weaveDigest.valDigest(chatModel));
        expect(published.ref).toBe(`weave:///weft/rag-demo/object/ChatModel:${weaveDigest.valDigest(chatModel)}`);
        const rows = [{ q: '1' }, { q: '2' }, { q: '3' }];
        const table = await store.tables.create({ rows });
        expect(table.rowDigests).toEqual(rows.map((row) => weaveDigest.valDigest(row)));
        expect(table.digest).toBe(crypto.createHash('sha256').update(table.rowDigests.join('')).digest('hex'));
        const file = await store.files.put(Buffer.from('image bytes'));
        expect(file.digest).toBe(weaveDigest.computeDigest(Buffer.from('image bytes')));
      } finally {
        await store.close();
        await location.dispose();
      }
    });
  });
});
