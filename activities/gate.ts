import type { LineageStore } from '../lib/lineage';
import type { StoredEvaluationResult } from '../lib/evaluation';
import { decideGate } from '../lib/scoring/gate';
import type { LifecyclePipelineActivities } from '../workflows/contracts/lifecycle';
import { atBoundary } from './boundary';

export interface GateActivityDependencies {
  store: LineageStore;
}

/** The gate on `weft-pipeline`: reads the two EvaluationResults and applies the pure decision (lib/scoring/gate.ts). */
export function createGateActivities({
  store,
}: GateActivityDependencies): Pick<LifecyclePipelineActivities, 'gateStatistics'> {
  const resultAt = async (ref: string) => (await store.objects.get(ref)).value as StoredEvaluationResult;
  return atBoundary<Pick<LifecyclePipelineActivities, 'gateStatistics'>>({
    async gateStatistics({ challengerResultRef, championResultRef, policy }) {
      const challenger = await resultAt(challengerResultRef);
      const champion = championResultRef === null ? null : await resultAt(championResultRef);
      return decideGate(challenger, champion, policy);
    },
  });
}
