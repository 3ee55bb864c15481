/** Small, seeded statistics for evaluation summaries and the gate: deterministic so a replayed decision is identical. */
import { createSeededRandom } from '../inference/sampling';

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Linear-interpolated quantile of sorted values (the R-7 / numpy default definition). */
export function quantile(sortedValues: readonly number[], probability: number): number {
  if (sortedValues.length === 0) return Number.NaN;
  const position = (sortedValues.length - 1) * probability;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sortedValues[lower] + (sortedValues[upper] - sortedValues[lower]) * (position - lower);
}

export interface BootstrapInterval {
  mean: number;
  ciLow: number;
  ciHigh: number;
  count: number;
}

/** Percentile bootstrap interval of the mean. */
export function bootstrapMean(
  values: readonly number[],
  options: { confidence?: number; resamples?: number; seed?: number } = {},
): BootstrapInterval {
  const confidence = options.confidence ?? 0.95;
  const resamples = options.resamples ?? 2000;
  const random = createSeededRandom(options.seed ?? 17);
  const count = values.length;
  if (count === 0) return { mean: Number.NaN, ciLow: Number.NaN, ciHigh: Number.NaN, count };
  const means = new Float64Array(resamples);
  for (let resample = 0; resample < resamples; resample += 1) {
    let sum = 0;
    for (let draw = 0; draw < count; draw += 1) sum += values[Math.floor(random() * count)];
    means[resample] = sum / count;
  }
  const sorted = Array.from(means).sort((left, right) => left - right);
  const tail = (1 - confidence) / 2;
  return { mean: mean(values), ciLow: quantile(sorted, tail), ciHigh: quantile(sorted, 1 - tail), count };
}

export class PairingError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'PairingError';
  }
}

/**
 * Paired bootstrap of (challenger − champion) over the same rows: resampling row indices keeps each
 * row's pair together, so per-row difficulty cancels out and the interval is much tighter than
 * comparing two independent means.
 */
export function pairedBootstrapDifference(
  challenger: readonly number[],
  champion: readonly number[],
  options: { confidence?: number; resamples?: number; seed?: number } = {},
): BootstrapInterval {
  if (challenger.length !== champion.length) {
    throw new PairingError(
      `Paired comparison needs the same rows for both models: challenger has ${challenger.length} scores, champion ${champion.length}.`,
    );
  }
  return bootstrapMean(
    challenger.map((value, index) => value - champion[index]),
    options,
  );
}
