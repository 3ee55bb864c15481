import type { ScoreName } from '../../workflows/contracts/evaluation';
import type { GateDecision, GatePolicy } from '../../workflows/contracts/lifecycle';
import { pairedBootstrapDifference } from './statistics';

/** The part of an EvaluationResult the gate reads: per-row scores and the per-score means. */
export interface GateEvidence {
  rows: { rowIndex: number; scores: Record<string, number> }[];
  summary: Partial<Record<ScoreName, { mean: number }>>;
}

/**
 * The gate's decision, a pure function of the two results and the policy. With a champion: the challenger passes
 * when the lower bound of the paired bootstrap interval of (challenger − champion) on `policy.metric`, over the rows
 * both answered, is above `policy.margin`. Without one: when every threshold of `policy.thresholds` is met.
 */
export function decideGate(challenger: GateEvidence, champion: GateEvidence | null, policy: GatePolicy): GateDecision {
  const challengerMean = challenger.summary[policy.metric]?.mean ?? Number.NaN;
  if (champion === null) {
    const meanOf = (name: string) => challenger.summary[name as ScoreName]?.mean ?? Number.NaN;
    const failing = Object.entries(policy.thresholds).filter(
      ([name, threshold]) => !(meanOf(name) >= (threshold ?? 0)),
    );
    return {
      decision: failing.length === 0 ? 'pass' : 'fail',
      metric: policy.metric,
      challengerMean,
      championMean: null,
      difference: null,
      ciLow: null,
      ciHigh: null,
      margin: policy.margin,
      reason:
        failing.length === 0
          ? `no champion: every threshold met (${Object.entries(policy.thresholds)
              .map(([name, value]) => `${name} ≥ ${value}`)
              .join(', ')})`
          : `no champion: below threshold on ${failing.map(([name, value]) => `${name} (${meanOf(name).toFixed(3)} < ${value})`).join(', ')}`,
    };
  }
  const championByRow = new Map(champion.rows.map((row) => [row.rowIndex, row.scores[policy.metric] ?? Number.NaN]));
  const paired = challenger.rows.filter((row) => championByRow.has(row.rowIndex));
  const interval = pairedBootstrapDifference(
    paired.map((row) => row.scores[policy.metric] ?? Number.NaN),
    paired.map((row) => championByRow.get(row.rowIndex)!),
    { confidence: policy.confidence, resamples: policy.resamples, seed: 11 },
  );
  const pass = interval.ciLow > policy.margin;
  return {
    decision: pass ? 'pass' : 'fail',
    metric: policy.metric,
    challengerMean: challenger.rows.length ? challengerMean : Number.NaN,
    championMean: champion.summary[policy.metric]?.mean ?? Number.NaN,
    difference: interval.mean,
    ciLow: interval.ciLow,
    ciHigh: interval.ciHigh,
    margin: policy.margin,
    reason: `${policy.metric}: challenger − champion = ${interval.mean.toFixed(3)}, ${Math.round(policy.confidence * 100)}% CI [${interval.ciLow.toFixed(3)}, ${interval.ciHigh.toFixed(3)}] over ${interval.count} paired rows; ${pass ? 'lower bound above' : 'lower bound not above'} margin ${policy.margin}`,
  };
}
