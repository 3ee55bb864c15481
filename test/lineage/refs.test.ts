import { formatRef, InvalidNameError, InvalidRefError, parseRef, validateName } from '../../lib/lineage';

describe('lineage refs', () => {
  it.each([
    'wandb-artifact:///weft/rag-demo/chat-model:v3',
    'wandb-artifact:///weft/rag-demo/chat-model:production',
    'wandb-artifact:///acme/wandb-registry-RAG Chat Models/chat-model:v0',
    'wandb-artifact:///acme/wandb-registry-RAG Models/rag-app:staging',
    'weave:///weft/rag-demo/object/RagModel:AbC123xyz',
    'weave:///weft/rag-demo/table/0123456789abcdef',
    'weave:///weft/rag-demo/call/0190f1c2-aaaa-7bbb-8ccc-123456789abc',
  ])('round-trips %s', (ref) => {
    expect(formatRef(parseRef(ref))).toBe(ref);
  });

  it('parses the parts of each form', () => {
    expect(parseRef('wandb-artifact:///weft/rag-demo/chat-model:v3')).toEqual({
      kind: 'artifact',
      entity: 'weft',
      project: 'rag-demo',
      name: 'chat-model',
      version: 'v3',
    });
    expect(parseRef('wandb-artifact:///acme/wandb-registry-RAG Chat Models/chat:production')).toEqual({
      kind: 'registry',
      org: 'acme',
      registry: 'RAG Chat Models',
      collection: 'chat',
      version: 'production',
    });
    expect(parseRef('weave:///e/p/object/ChatModel:latest')).toMatchObject({
      kind: 'object',
      name: 'ChatModel',
      digest: 'latest',
    });
    expect(parseRef('weave:///e/p/call/abc')).toEqual({ kind: 'call', entity: 'e', project: 'p', id: 'abc' });
  });

  it.each([
    ['http://example/x', /unknown scheme/],
    ['wandb-artifact:///weft/rag-demo', /three non-empty path parts/],
    ['wandb-artifact:///weft/rag-demo/chat:', /names no version/],
    ['wandb-artifact:///weft/rag-demo/chat:v01', /leading zeros/],
    ['wandb-artifact:///weft/../chat:v0', /contains "\.\."/],
    ['wandb-artifact:///weft/wandb-registry-Bad!Name/chat:v0', /registry name .* contains the character "!"/],
    ['weave:///e/p/object/ChatModel', /has no ":<digest>"/],
    ['weave:///e/p/object/ChatModel:not-a-digest!', /a digest is 1-128 letters and digits/],
    ['weave:///e/p/op/predict:abc', /accepted kinds are object, table and call/],
    ['weave:///e/p/call/has space', /bad id/],
  ])('rejects %s with a message saying what is allowed', (ref, message) => {
    expect(() => parseRef(ref)).toThrow(InvalidRefError);
    expect(() => parseRef(ref)).toThrow(message);
  });

  it.each([
    ['', /is empty/],
    ['a'.repeat(129), /limit is 128/],
    ['a..b', /contains "\.\."/],
    ['a/b', /path separator/],
    ['tab\there', /control character U\+0009 at position 3/],
    ['.hidden', /contains the character "\."/],
  ])('rejects the object name %j', (name, message) => {
    expect(() => validateName('object name', name)).toThrow(InvalidNameError);
    expect(() => validateName('object name', name)).toThrow(message);
  });

  it('rejects aliases that look like version numbers', () => {
    expect(() => validateName('alias', 'v2')).toThrow(/looks like a version number/);
  });
});
