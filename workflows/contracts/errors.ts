/**
 * Failure `type` strings shared by activities, workflows and the CLI: the one list of the types a process matches on.
 * Match on these, not on `instanceof`: failures cross process boundaries as ApplicationFailure with this type.
 * Any other non-retryable failure carries the class name of the lib/ error behind it (lib/common/errors.ts:
 * WeftError), unique across lib/ (test/unit/error-types.test.ts), for people to read rather than code to match.
 */
export const errorTypes = {
  /** Bad input a retry cannot fix: malformed ref, unknown artifact, schema mismatch. */
  invalidInput: 'WeftInvalidInput',
  /** A model folder or file is missing or corrupt. */
  invalidModel: 'WeftInvalidModel',
  /** An activity tried to return more than the payload limit (rule 2: payloads are refs). */
  payloadTooLarge: 'WeftPayloadTooLarge',
  /** A compare-and-set alias move found the alias pointing somewhere unexpected. */
  aliasConflict: 'WeftAliasConflict',
} as const;

export type ErrorType = (typeof errorTypes)[keyof typeof errorTypes];

/** Every activity result larger than this is a bug: data belongs in the lineage store, refs in history. */
export const maxActivityResultBytes = 256 * 1024;
