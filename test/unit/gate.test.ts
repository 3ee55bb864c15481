import { decideGate, type GateEvidence } from '../../lib/scoring/gate';
import { defaultGatePolicy, type GatePolicy } from '../../workflows/contracts/lifecycle';

/** An EvaluationResult's gate-relevant part from per-row F1 scores. */
function evidence(f1: number[]): GateEvidence {
  const mean = f1.reduce((sum, value) => sum + value, 0) / f1.length;
  return { rows: f1.map((value, rowIndex) => ({ rowIndex, scores: { f1: value } })), summary: { f1: { mean } } };
}

const policy: GatePolicy = { ...defaultGatePolicy, resamples: 500 };
const rows = (count: number, value: (index: number) => number) => Array.from({ length: count }, (_, i) => value(i));

describe('the gate decision (pure)', () => {
  it('passes a challenger that is better on every paired row, with the interval above the margin', () => {
    const decision = decideGate(evidence(rows(40, (i) => 0.5 + (i % 5) * 0.05)), evidence(rows(40, () => 0.3)), policy);
    expect(decision.decision).toBe('pass');
    expect(decision.ciLow).toBeGreaterThan(0);
    expect(decision.difference).toBeCloseTo(0.3, 10);
    expect(decision.reason).toMatch(
      /^f1: challenger − champion = 0\.300, 95% CI \[.*\] over 40 paired rows; lower bound above margin 0$/,
    );
  });

  it('fails a challenger equal to the champion: the lower bound is not above a zero margin', () => {
    const same = rows(30, (i) => (i % 3) / 2);
    const decision = decideGate(evidence(same), evidence(same), policy);
    expect(decision).toMatchObject({ decision: 'fail', difference: 0, ciLow: 0, ciHigh: 0 });
    expect(decision.reason).toMatch(/lower bound not above margin 0$/);
  });

  it('fails a better challenger when the margin asks for more than the interval shows', () => {
    const challenger = evidence(rows(40, () => 0.35));
    const decision = decideGate(challenger, evidence(rows(40, () => 0.3)), { ...policy, margin: 0.1 });
    expect(decision.decision).toBe('fail');
    expect(decision.margin).toBe(0.1);
  });

  it('pairs rows by index: rows the champion did not answer are left out of the difference', () => {
    const champion = evidence([0.1, 0.1]);
    const challenger = evidence([0.6, 0.6, 0, 0, 0, 0]);
    const decision = decideGate(challenger, champion, policy);
    expect(decision.difference).toBeCloseTo(0.5, 10);
    expect(decision.reason).toContain('over 2 paired rows');
  });

  it('without a champion: passes when every threshold is met and names the ones that are not', () => {
    const thresholds = { f1: 0.2 };
    expect(decideGate(evidence([0.3, 0.3]), null, { ...policy, thresholds })).toMatchObject({
      decision: 'pass',
      championMean: null,
      difference: null,
      reason: 'no champion: every threshold met (f1 ≥ 0.2)',
    });
    expect(decideGate(evidence([0.1, 0.1]), null, { ...policy, thresholds })).toMatchObject({
      decision: 'fail',
      reason: 'no champion: below threshold on f1 (0.100 < 0.2)',
    });
  });
});
