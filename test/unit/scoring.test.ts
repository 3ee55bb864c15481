import {
  exactMatchScorer,
  f1Scorer,
  groundednessScorer,
  hitAtKScorer,
  mrrScorer,
  scorerNamed,
  type ScoredRow,
} from '../../lib/scoring/scorers';
import { bootstrapMean, pairedBootstrapDifference, quantile } from '../../lib/scoring/statistics';

const row = (overrides: Partial<ScoredRow>): ScoredRow => ({
  answer: 'Joseph Fourier',
  goldDocumentId: 'doc-001',
  prediction: 'Joseph Fourier',
  retrievedDocumentIds: ['doc-007', 'doc-001'],
  retrievedContexts: ['…', 'the French mathematician Joseph Fourier reasoned…'],
  latencyMilliseconds: 12,
  ...overrides,
});

describe('scorers', () => {
  it('exact match ignores case, punctuation and articles, like the SQuAD script', () => {
    expect(exactMatchScorer.score(row({ prediction: 'joseph fourier.' }))).toBe(1);
    expect(exactMatchScorer.score(row({ answer: 'the Kyoto Protocol', prediction: 'Kyoto protocol' }))).toBe(1);
    expect(exactMatchScorer.score(row({ prediction: 'Fourier' }))).toBe(0);
  });

  it('token F1 gives partial credit', () => {
    expect(f1Scorer.score(row({ prediction: 'Fourier' }))).toBeCloseTo(2 / 3, 10);
    expect(f1Scorer.score(row({ answer: 'about 7 percent', prediction: '7 percent more' }))).toBeCloseTo(2 / 3, 10);
    expect(f1Scorer.score(row({ prediction: 'Svante Arrhenius' }))).toBe(0);
  });

  it('hit@k and MRR use the gold document’s rank', () => {
    expect(hitAtKScorer(1).score(row({}))).toBe(0);
    expect(hitAtKScorer(5).score(row({}))).toBe(1);
    expect(mrrScorer.score(row({}))).toBe(0.5);
    expect(mrrScorer.score(row({ retrievedDocumentIds: ['doc-002'] }))).toBe(0);
  });

  it('groundedness is the share of answer tokens present in the retrieved contexts', () => {
    expect(groundednessScorer.score(row({}))).toBe(1);
    // fourier, reasoned: in the context; and, tyndall: not.
    expect(groundednessScorer.score(row({ prediction: 'Fourier reasoned and Tyndall' }))).toBe(0.5);
  });

  it('an unknown scorer name is an error that lists the known ones', () => {
    expect(() => scorerNamed('bleu')).toThrow(/Unknown scorer 'bleu'. Known scorers: exact_match, f1, hit@5/);
  });
});

describe('statistics', () => {
  it('quantile matches numpy’s default (linear) definition', () => {
    expect(quantile([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
  });

  it('bootstrap is deterministic for a seed and brackets the mean', () => {
    const values = Array.from({ length: 80 }, (_, index) => (index % 3 === 0 ? 1 : 0));
    const first = bootstrapMean(values, { seed: 5 });
    expect(bootstrapMean(values, { seed: 5 })).toEqual(first);
    expect(first.ciLow).toBeLessThan(first.mean);
    expect(first.ciHigh).toBeGreaterThan(first.mean);
    expect(first.mean).toBeCloseTo(27 / 80, 10);
  });

  it('a consistent per-row improvement gives a paired interval above zero; noise does not', () => {
    const champion = Array.from({ length: 60 }, (_, index) => (index % 2 === 0 ? 0.2 : 0.8));
    const better = champion.map((value) => Math.min(1, value + 0.1));
    const improved = pairedBootstrapDifference(better, champion);
    expect(improved.ciLow).toBeGreaterThan(0);
    const shuffled = champion.map((_, index) => champion[(index + 1) % champion.length]);
    const noise = pairedBootstrapDifference(shuffled, champion);
    expect(noise.ciLow).toBeLessThan(0);
    expect(noise.ciHigh).toBeGreaterThan(0);
  });

  it('refuses to pair scores of different rows', () => {
    expect(() => pairedBootstrapDifference([1, 0], [1])).toThrow(/challenger has 2 scores, champion 1/);
  });
});
