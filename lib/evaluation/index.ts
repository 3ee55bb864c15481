/**
 * The evaluation record: Weave call shapes of an `Evaluation.evaluate` run (calls.ts, the SDK's own shapes) and the
 * pipeline's per-row records and summary over them (records.ts).
 */
export * from './calls';
export * from './records';
