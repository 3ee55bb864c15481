import { ApplicationFailure } from '@temporalio/common';
import { errorTypes, maxActivityResultBytes } from '../workflows/contracts/errors';

/** Errors from lib/* carry `retryable`; this is what lets the boundary classify them without knowing each class. */
interface ClassifiedError extends Error {
  retryable?: boolean;
  type?: string;
}

/**
 * Maps an error to what Temporal should do with it: a lib error that says it is not retryable (bad
 * input, missing model, alias conflict) becomes a non-retryable ApplicationFailure whose message is
 * the original, actionable one; anything else is rethrown and retried under the activity's policy.
 */
export function toActivityFailure(error: unknown): unknown {
  if (error instanceof ApplicationFailure) return error;
  const classified = error as ClassifiedError;
  if (classified instanceof Error && classified.retryable === false) {
    const type = classified.type ?? (classified.name === 'Error' ? errorTypes.invalidInput : classified.name);
    return ApplicationFailure.create({ message: classified.message, type, nonRetryable: true, cause: classified });
  }
  return error;
}

/** Bad input found by an activity itself: the boundary turns it into a non-retryable failure with this message. */
export function invalidInput(message: string, type: string = errorTypes.invalidInput): Error {
  return Object.assign(new Error(message), { retryable: false, type });
}

/** Rule 2 of the architecture: activity results are refs and small summaries, never data. */
export function assertSmallResult(activityName: string, result: unknown): void {
  const size = Buffer.byteLength(JSON.stringify(result ?? null));
  if (size > maxActivityResultBytes) {
    throw ApplicationFailure.nonRetryable(
      `${activityName} returned ${size} bytes, over the ${maxActivityResultBytes}-byte limit for activity results: ` +
        'store the data in the lineage store and return its ref (this is a bug in weft).',
      errorTypes.payloadTooLarge,
    );
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- activity signatures vary; the wrapper passes arguments through untouched
type AnyActivity = (...args: any[]) => Promise<unknown>;

/** Wraps every activity of a factory's result with error classification and the result-size check. */
export function atBoundary<T extends { [K in keyof T]: AnyActivity }>(activities: T): T {
  const wrapped: Record<string, AnyActivity> = {};
  for (const [name, activity] of Object.entries(activities) as [string, AnyActivity][]) {
    wrapped[name] = async (...args: unknown[]) => {
      let result: unknown;
      try {
        result = await activity(...args);
      } catch (error) {
        throw toActivityFailure(error);
      }
      assertSmallResult(name, result);
      return result;
    };
  }
  return wrapped as T;
}
