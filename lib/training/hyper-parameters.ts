/**
 * The documented range of every fine-tune hyper-parameter a run may override (`--hp name=value`).
 * The trainer checks the lower bounds too; the upper bounds are weft's: beyond them a run is a typo
 * (`max_steps=1e15`) rather than a plan, and would occupy a GPU for years.
 */
export interface HyperParameterRange {
  min: number;
  max: number;
  /** Whether `min` itself is allowed (learning_rate 0 is not). */
  minInclusive: boolean;
  /** Whether `max` itself is allowed (lora_dropout 1 is not). */
  maxInclusive: boolean;
  integer: boolean;
  meaning: string;
}

const range = (
  min: number,
  max: number,
  integer: boolean,
  meaning: string,
  inclusive: { min?: boolean; max?: boolean } = {},
): HyperParameterRange => ({
  min,
  max,
  integer,
  meaning,
  minInclusive: inclusive.min ?? true,
  maxInclusive: inclusive.max ?? true,
});

export const hyperParameterRanges: Record<string, HyperParameterRange> = {
  epochs: range(0, 1000, false, 'passes over the training rows', { min: false }),
  max_steps: range(1, 1_000_000, true, 'optimizer steps (overrides epochs)'),
  learning_rate: range(0, 1, false, 'peak AdamW learning rate', { min: false, max: false }),
  batch_size: range(1, 4096, true, 'rows per optimizer step'),
  lora_rank: range(1, 1024, true, 'LoRA rank r'),
  lora_alpha: range(0, 4096, false, 'LoRA scaling alpha', { min: false }),
  lora_dropout: range(0, 1, false, 'dropout on LoRA inputs', { max: false }),
  checkpoint_every: range(1, 1_000_000, true, 'steps between checkpoints'),
  max_length: range(16, 131_072, true, 'tokens per training row (longer rows are cut)'),
  warmup_steps: range(0, 1_000_000, true, 'linear warm-up steps'),
  seed: range(0, 4_294_967_295, true, 'random seed'),
  lora_top_layers: range(1, 100_000, true, 'LoRA on the top N decoder layers only (N ≥ the layer count: all)'),
};

function describeRange(name: string, entry: HyperParameterRange): string {
  const low = `${entry.minInclusive ? '[' : '('}${entry.min}`;
  const high = `${entry.max}${entry.maxInclusive ? ']' : ')'}`;
  return `${name} must be ${entry.integer ? 'a whole number ' : ''}in ${low}, ${high}`;
}

/** Every problem with a set of overrides (unknown name, not a number, out of range), one message each. */
export function hyperParameterProblems(hyperParameters: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(hyperParameters)) {
    const entry = hyperParameterRanges[name];
    if (!entry) {
      problems.push(`unknown hyper-parameter '${name}'; allowed: ${Object.keys(hyperParameterRanges).join(', ')}`);
      continue;
    }
    const number = value as number;
    const inRange =
      typeof number === 'number' &&
      Number.isFinite(number) &&
      (!entry.integer || Number.isInteger(number)) &&
      (entry.minInclusive ? number >= entry.min : number > entry.min) &&
      (entry.maxInclusive ? number <= entry.max : number < entry.max);
    if (!inRange) problems.push(`hyper-parameter ${describeRange(name, entry)}, got ${String(value)}`);
  }
  return problems;
}
