import { findTemporalCli } from '../../lib/temporal/temporal-cli';

/**
 * The real Temporal CLI binary installed by setup. Tests run on it through
 * `server.executable = { type: 'existing-path' }` instead of letting the SDK download one.
 */
export function temporalCliForTests(): string {
  try {
    return findTemporalCli();
  } catch (error) {
    throw new Error(`Tests need the Temporal CLI: ${(error as Error).message}`);
  }
}
