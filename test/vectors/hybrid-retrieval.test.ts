import { Bm25Index, reciprocalRankFusion, tokenize } from '../../lib/vectors';

describe('reciprocal rank fusion', () => {
  it('sums 1 / (60 + rank) over the rankings, best first', () => {
    const fused = reciprocalRankFusion([
      ['a', 'b', 'c'],
      ['c', 'a'],
    ]);
    expect(fused.map((entry) => entry.id)).toEqual(['a', 'c', 'b']);
    expect(fused[0].score).toBeCloseTo(1 / 61 + 1 / 62, 12);
    expect(fused[1].score).toBeCloseTo(1 / 63 + 1 / 61, 12);
    expect(fused[2].score).toBeCloseTo(1 / 62, 12);
  });

  it('orders equal scores by id so results are deterministic', () => {
    expect(reciprocalRankFusion([['y'], ['x']]).map((entry) => entry.id)).toEqual(['x', 'y']);
  });
});

describe('BM25', () => {
  const index = Bm25Index.build([
    { id: 'common', text: 'the model answers the question' },
    { id: 'rare', text: 'quantisation of weights' },
    { id: 'long', text: 'quantisation '.concat('filler words that dilute the term '.repeat(20)) },
    { id: 'card', text: 'a model card' },
    { id: 'zoo', text: 'the model zoo' },
    { id: 'serving', text: 'serving a model' },
    { id: 'unrelated', text: 'weather report for tuesday' },
  ]);

  it('ranks a rare term above a common one and a short document above a long one', () => {
    const ranking = index.search('model quantisation');
    const score = (id: string) => ranking.find((entry) => entry.id === id)?.score ?? 0;
    expect(ranking[0].id).toBe('rare');
    expect(score('rare')).toBeGreaterThan(score('long'));
    expect(score('long')).toBeGreaterThan(0);
    expect(ranking.map((entry) => entry.id)).not.toContain('unrelated');
    expect(ranking).toHaveLength(6);
  });

  it('returns nothing for terms no document contains', () => {
    expect(index.search('zebra')).toEqual([]);
    expect(index.search('')).toEqual([]);
  });

  it('tokenises case-insensitively on letters and digits of any script', () => {
    expect(tokenize('Ünïcode café, GPU-2026: 東京!')).toEqual(['ünïcode', 'café', 'gpu', '2026', '東京']);
  });
});
