import { randomInt } from 'node:crypto';

/** How the next token is chosen from one row of logits. */
export interface SamplingParameters {
  /** 0 picks the most likely token (greedy); above 0 samples from softmax(logits / temperature). */
  temperature: number;
  /** Drop tokens less likely than minP × the top token's probability (0 disables). */
  minP: number;
  /** Keep the smallest set of most likely tokens whose probabilities sum to at least topP (1 disables). */
  topP: number;
}

/** A deterministic [0, 1) generator (mulberry32): the same seed gives the same completion, run after run. */
export function createSeededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomSeed(): number {
  return randomInt(0, 2 ** 32 - 1);
}

/** Index of the largest logit in logits[offset, offset + length); the first one wins ties, as torch.argmax. */
export function argmax(logits: Float32Array, offset: number, length: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let index = 0; index < length; index++) {
    const value = logits[offset + index];
    if (value > bestValue) {
      bestValue = value;
      best = index;
    }
  }
  return best;
}

/**
 * Picks a token id from logits[offset, offset + length). Top-p and min-p each keep a most-likely-first prefix of the
 * vocabulary, so applying both keeps the shorter prefix whatever their order (transformers applies top-p, then min-p).
 */
export function sampleToken(
  logits: Float32Array,
  offset: number,
  length: number,
  parameters: SamplingParameters,
  random: () => number,
): number {
  if (parameters.temperature <= 0) return argmax(logits, offset, length);
  const inverseTemperature = 1 / parameters.temperature;
  let maximum = -Infinity;
  for (let index = 0; index < length; index++) maximum = Math.max(maximum, logits[offset + index]);
  const probabilities = new Float64Array(length);
  let total = 0;
  for (let index = 0; index < length; index++) {
    const probability = Math.exp((logits[offset + index] - maximum) * inverseTemperature);
    probabilities[index] = probability;
    total += probability;
  }
  // The top token has weight exp(0) = 1, so min-p's threshold is simply minP on these unnormalised weights.
  const minimumWeight = parameters.minP > 0 ? parameters.minP : 0;
  let candidates: number[] = [];
  for (let index = 0; index < length; index++) {
    if (probabilities[index] >= minimumWeight && probabilities[index] > 0) candidates.push(index);
  }
  if (parameters.topP < 1) {
    candidates.sort((left, right) => probabilities[right] - probabilities[left] || left - right);
    const target = parameters.topP * total;
    let cumulative = 0;
    let keep = 0;
    while (keep < candidates.length) {
      cumulative += probabilities[candidates[keep]];
      keep++;
      if (cumulative >= target) break;
    }
    candidates = candidates.slice(0, Math.max(1, keep));
  }
  let candidateTotal = 0;
  for (const candidate of candidates) candidateTotal += probabilities[candidate];
  let threshold = random() * candidateTotal;
  for (const candidate of candidates) {
    threshold -= probabilities[candidate];
    if (threshold < 0) return candidate;
  }
  return candidates[candidates.length - 1];
}
