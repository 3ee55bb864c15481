import { InvalidFilterError, UnsupportedFilterError } from '../../lib/vectors';
import { parseFilter } from '../../lib/vectors/validation';

describe('filter validation (shared by both adapters)', () => {
  it('accepts the supported subset and normalises point ids', () => {
    expect(
      parseFilter({
        must: [{ key: 'a.b', match: { value: 'x' } }, { has_id: ['0F8FAD5B-D9CB-469F-A165-70867728950E'] }],
        should: [{ key: 'n', range: { gte: 1, lt: 2 } }],
        must_not: [{ must: [{ key: 'tags', match: { any: ['x', 'y'] } }] }],
      }),
    ).toEqual({
      must: [{ key: 'a.b', match: { value: 'x' } }, { has_id: ['0f8fad5b-d9cb-469f-a165-70867728950e'] }],
      should: [{ key: 'n', range: { gte: 1, lt: 2 } }],
      must_not: [{ must: [{ key: 'tags', match: { any: ['x', 'y'] } }] }],
    });
  });

  it.each<[string, unknown, string]>([
    ['a float match value', { must: [{ key: 'x', match: { value: 1.5 } }] }, 'filter.must[0].match.value'],
    ['mixed match any', { must: [{ key: 'x', match: { any: ['a', 1] } }] }, 'filter.must[0].match.any'],
    ['a range without bounds', { must: [{ key: 'x', range: {} }] }, 'filter.must[0].range'],
    ['a datetime range', { must: [{ key: 'x', range: { gt: '2024-01-01' } }] }, 'filter.must[0].range.gt'],
    ['an empty key', { should: [{ key: '', match: { value: 1 } }] }, 'filter.should[0].key'],
    ['a condition without match or range', { must: [{ key: 'x' }] }, 'filter.must[0]'],
  ])('rejects %s as invalid, naming where', (_title, filter, where) => {
    expect(() => parseFilter(filter)).toThrow(InvalidFilterError);
    expect(() => parseFilter(filter)).toThrow(`Invalid filter at ${where}`);
  });

  it.each<[string, unknown]>([
    ['an unknown clause', { filter: [] }],
    ['values_count', { must: [{ key: 'x', values_count: { gt: 1 } }] }],
    ['is_null', { must_not: [{ is_null: { key: 'x' } }] }],
    ['nested', { must: [{ nested: { key: 'x', filter: {} } }] }],
  ])('rejects %s as unsupported rather than ignoring it', (_title, filter) => {
    expect(() => parseFilter(filter)).toThrow(UnsupportedFilterError);
  });
});
