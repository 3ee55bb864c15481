import { spawn } from 'node:child_process';
import path from 'node:path';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const weftBin = path.resolve(__dirname, '..', '..', 'bin', 'weft');

/** Runs the real `weft` executable as a user would, with an environment built from scratch plus overrides. */
export function runWeft(args: string[], environment: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TEMPORAL_')));
  return new Promise((resolve, reject) => {
    const child = spawn(weftBin, args, { env: { ...base, ...environment }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
