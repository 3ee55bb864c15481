import { argmax, createSeededRandom, sampleToken } from '../../lib/inference/sampling';

const logits = Float32Array.from([2.0, 1.0, 0.5, -1.0, 3.0]);
const greedy = { temperature: 0, minP: 0, topP: 1 };

function draw(parameters: { temperature: number; minP: number; topP: number }, seed: number, count: number): number[] {
  const random = createSeededRandom(seed);
  return Array.from({ length: count }, () => sampleToken(logits, 0, logits.length, parameters, random));
}

describe('token selection', () => {
  it('greedy picks the most likely token, the first on ties, like torch.argmax', () => {
    expect(sampleToken(logits, 0, logits.length, greedy, Math.random)).toBe(4);
    expect(argmax(Float32Array.from([1, 5, 5, 2]), 0, 4)).toBe(1);
    expect(argmax(Float32Array.from([9, 9, 1, 7]), 2, 2)).toBe(1);
  });

  it('the same seed gives the same samples and another seed other samples', () => {
    const parameters = { temperature: 1.5, minP: 0, topP: 1 };
    expect(draw(parameters, 42, 50)).toEqual(draw(parameters, 42, 50));
    expect(draw(parameters, 42, 50)).not.toEqual(draw(parameters, 7, 50));
  });

  it('min-p drops tokens far less likely than the best one', () => {
    // At temperature 1, token 1 has e^(1-3) ≈ 0.14 of the top token's probability: below a 0.2 threshold.
    const samples = draw({ temperature: 1, minP: 0.2, topP: 1 }, 1, 300);
    expect(new Set(samples)).toEqual(new Set([0, 4]));
  });

  it('top-p keeps only the most likely tokens that reach the probability mass', () => {
    const samples = draw({ temperature: 1, minP: 0, topP: 0.5 }, 3, 200);
    expect(new Set(samples)).toEqual(new Set([4]));
    const wider = draw({ temperature: 1, minP: 0, topP: 0.9 }, 3, 300);
    expect(new Set(wider)).toEqual(new Set([0, 1, 4]));
  });

  it('sampling at a high temperature reaches every token', () => {
    expect(new Set(draw({ temperature: 5, minP: 0, topP: 1 }, 11, 500)).size).toBe(5);
  });
});
