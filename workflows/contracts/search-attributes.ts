import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes weft sets on its workflows, so runs can be found and filtered in the
 * Temporal UI (`WeftStage = "evaluate"`). `weft up` registers them on the embedded server; on a
 * cluster `scripts/temporal-cluster.ts namespace` (also docker-compose.yml's `temporal-namespace` service) registers
 * them, and `weft doctor` prints the `temporal operator search-attribute create` command for each one missing. This
 * is the only list.
 */
export const weftStageSearchAttribute = defineSearchAttributeKey('WeftStage', SearchAttributeType.KEYWORD);
export const weftAppSearchAttribute = defineSearchAttributeKey('WeftApp', SearchAttributeType.KEYWORD);
export const weftChatModelVersionSearchAttribute = defineSearchAttributeKey(
  'WeftChatModelVersion',
  SearchAttributeType.KEYWORD,
);
export const weftGateDecisionSearchAttribute = defineSearchAttributeKey(
  'WeftGateDecision',
  SearchAttributeType.KEYWORD,
);
export const weftScoreSearchAttribute = defineSearchAttributeKey('WeftScore', SearchAttributeType.DOUBLE);
export const weftRegressionSearchAttribute = defineSearchAttributeKey('WeftRegression', SearchAttributeType.BOOL);

/** Name → type, in the form `temporal server start-dev --search-attribute` and the operator API take. */
export const weftSearchAttributeDefinitions: Record<string, 'Keyword' | 'Double' | 'Bool'> = {
  WeftStage: 'Keyword',
  WeftApp: 'Keyword',
  WeftChatModelVersion: 'Keyword',
  WeftGateDecision: 'Keyword',
  WeftScore: 'Double',
  WeftRegression: 'Bool',
};
