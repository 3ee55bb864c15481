/**
 * The W&B Python SDKs (wandb 0.31, weave 0.54 in .venv-sdk) writing into `weft serve`, side by side with baselines
 * measured in the same run: weave `Evaluation.evaluate` calls recorded per second (goal ≥ 1,000), and wandb
 * `log_artifact` of many small files and of one large file against a plain local copy (fsync'd) of the same bytes
 * (goal ≤ 1.5×). Run: npx tsx bench/wandb-wire.ts [--rows 500] [--small-files 1000] [--large-mb 1024]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openLineageStore } from '../lib/lineage';
import { startWeaveServer } from '../lib/weave-server';

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

async function main(): Promise<void> {
  const rows = argument('rows', 500);
  const smallFiles = argument('small-files', 1000);
  const largeMb = argument('large-mb', 1024);
  const python = path.resolve(__dirname, '..', '.venv-sdk', 'bin', 'python');
  if (!fs.existsSync(python)) throw new Error('.venv-sdk is missing. Run: bash scripts/setup-wandb-sdks.sh');
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-wandb-'));
  const store = await openLineageStore(`sqlite://${path.join(folder, 'lineage.db')}`);
  const token = 'benchtoken0123456789abcdef0123456789abcdef';
  const server = await startWeaveServer({ store, token, port: 0 });
  try {
    const home = path.join(folder, 'home');
    fs.mkdirSync(path.join(home, 'wandb'), { recursive: true });
    const runPython = (extra: Record<string, string>): Promise<Record<string, number>> =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(python, [path.join(__dirname, 'python', 'wandb_wire.py')], {
          cwd: home,
          env: {
            ...extra,
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: home,
            WANDB_BASE_URL: server.url,
            WF_TRACE_SERVER_URL: server.url,
            WANDB_API_KEY: token,
            WEAVE_PRINT_CALL_LINK: 'false',
            WANDB_ERROR_REPORTING: 'false',
            WANDB_SILENT: 'true',
            WANDB_DIR: path.join(home, 'wandb'),
            WANDB_CACHE_DIR: path.join(home, 'cache'),
            WANDB_DATA_DIR: path.join(home, 'data'),
            WANDB_CONFIG_DIR: path.join(home, 'config'),
            WEAVE_SERVER_CACHE_DIR: path.join(home, 'weave-cache'),
            BENCH_ROWS: String(rows),
            BENCH_SMALL_FILES: String(smallFiles),
            BENCH_LARGE_MB: String(largeMb),
            BENCH_WORK: path.join(folder, 'work'),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let text = '';
        child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        child.once('exit', (code) =>
          code === 0 ? resolve(text) : reject(new Error(`python exited ${code}:\n${text}`)),
        );
      }).then((output) => {
        const line = output.split('\n').find((text) => text.startsWith('RESULT '));
        if (!line) throw new Error(`no RESULT line:\n${output}`);
        return JSON.parse(line.slice('RESULT '.length)) as Record<string, number>;
      });
    // Baseline first: the same Evaluation.evaluate with weave's tracing off, so no server is involved.
    const baseline = await runPython({ WEAVE_DISABLED: 'true', BENCH_WORK: path.join(folder, 'baseline') });
    const cpuBefore = process.cpuUsage();
    const seconds = await runPython({});
    const serverCpu = process.cpuUsage(cpuBefore);
    const calls = await store.calls.query({ entity: 'bench', project: 'wandb-wire', limit: 100_000 });
    // evaluate and summarize, and per row predict_and_score, predict and the scorer.
    const expectedCalls = 3 * rows + 2;
    const byOp: Record<string, number> = {};
    for (const call of calls) {
      const op = /\/op\/([^:]+):/.exec(call.opName)?.[1] ?? call.opName;
      byOp[op] = (byOp[op] ?? 0) + 1;
    }
    process.stdout.write(`calls by op: ${JSON.stringify(byOp)}\n`);
    const small = await store.artifacts.get('wandb-artifact:///bench/wandb-wire/small-files:latest');
    const large = await store.artifacts.get('wandb-artifact:///bench/wandb-wire/large-file:latest');
    const format = (value: number): string => value.toFixed(2);
    process.stdout.write(
      [
        `weave Evaluation.evaluate, ${rows} rows: ${calls.length} calls recorded (expected ${expectedCalls}) in ${format(seconds.evaluate_and_flush_s!)} s` +
          ` → ${Math.round(calls.length / seconds.evaluate_and_flush_s!)} calls/s (evaluate returned after ${format(seconds.evaluate_s!)} s;` +
          ` the same evaluate with tracing off: ${format(baseline.evaluate_s!)} s → ${Math.round(calls.length / baseline.evaluate_s!)} calls/s is the SDK's own ceiling here)`,
        `wandb log_artifact, ${small.manifest.length} files of 4 KiB: ${format(seconds.small_log_s!)} s; local copy ${format(seconds.small_copy_s!)} s → ${format(seconds.small_log_s! / seconds.small_copy_s!)}×`,
        `wandb log_artifact, one ${largeMb} MiB file (${large.size} bytes stored): ${format(seconds.large_log_s!)} s; local copy ${format(seconds.large_copy_s!)} s → ${format(seconds.large_log_s! / seconds.large_copy_s!)}×`,
        `weft serve's CPU time over the whole Python run (evaluation and uploads): ${format((serverCpu.user + serverCpu.system) / 1e6)} s`,
        '',
      ].join('\n'),
    );
  } finally {
    await server.close();
    await store.close();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
