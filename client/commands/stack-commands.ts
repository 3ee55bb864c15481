import type { Command } from 'commander';
import { loadConfig } from '../../lib/config/config';
import { ensureStack, type RunningStack } from '../../lib/temporal/stack';
import { superviseStack } from '../../lib/temporal/supervisor';

export interface StackUseOptions {
  /** Echo worker log lines to stderr (weft up does). */
  echoWorkers?: boolean;
  /** One gpu worker per GPU ordinal (weft up --gpus 0,1). */
  gpuDevices?: number[];
  quiet?: boolean;
  /** Restart dead workers with backoff and report a dead Temporal server, keeping WEFT_HOME/up.json for `weft doctor` (weft up does). */
  supervise?: boolean;
}

/**
 * Runs `body` against a ready stack: a reachable one as it is, or the embedded one started for the
 * command's own duration and stopped afterwards (also on Ctrl-C).
 */
export async function withStack<T>(options: StackUseOptions, body: (stack: RunningStack) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const say = (message: string) => {
    if (!options.quiet) process.stderr.write(`${message}\n`);
  };
  const stack = await ensureStack({
    home: config.home,
    uiPort: config.uiPort,
    gpuDevices: options.gpuDevices,
    onStatus: say,
    onLine: options.echoWorkers ? (kind, line) => process.stderr.write(`[${kind}] ${line}\n`) : undefined,
  });
  // Events of the supervisor are printed even with --quiet / --json: they are what went wrong.
  const supervisor = options.supervise
    ? superviseStack(stack, { home: config.home, onEvent: (message) => process.stderr.write(`${message}\n`) })
    : undefined;
  let stopping: Promise<void> | undefined;
  const stopOnce = () => (stopping ??= (supervisor?.stop() ?? Promise.resolve()).then(() => stack.stop()));
  const onSignal = (signal: NodeJS.Signals) => {
    say(`\n${signal}: stopping what this command started…`);
    void stopOnce().then(() => process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143));
  };
  // Any other way out (an uncaught error, process.exit) still signals the children; workers also watch their
  // IPC channel, so even a SIGKILL of this process leaves no worker behind.
  const onExit = () => stack.signalAll();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);
  process.once('exit', onExit);
  try {
    return await body(stack);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    await stopOnce();
    process.off('exit', onExit);
  }
}

export function registerStackCommands(program: Command): void {
  program
    .command('up')
    .description(
      'Start the embedded stack: Temporal dev server (SQLite in WEFT_HOME, Web UI on 8233) and the orchestrator, ' +
        'gpu and registry workers. Uses a reachable server instead when one is there. Ctrl-C stops everything it started.\n' +
        'A worker that dies is restarted with backoff; a Temporal server that stops answering is reported (see weft doctor).',
    )
    .option('--json', 'print the addresses as JSON once ready')
    .option('--quiet', 'do not echo worker logs')
    .option(
      '--gpus <ordinals>',
      'start one gpu worker per GPU, e.g. 0,1 (each gets WEFT_CUDA_DEVICE_ID and WEFT_GPU_SLOTS slots)',
    )
    .action(async (options: { json?: boolean; quiet?: boolean; gpus?: string }) => {
      const gpuDevices = options.gpus?.split(',').map((text) => {
        const ordinal = Number(text.trim());
        if (!Number.isInteger(ordinal) || ordinal < 0) {
          throw new Error(`--gpus takes GPU ordinals separated by commas (e.g. 0,1), got '${options.gpus}'.`);
        }
        return ordinal;
      });
      await withStack({ echoWorkers: !options.quiet && !options.json, gpuDevices, supervise: true }, async (stack) => {
        const ready = {
          temporalAddress: stack.address,
          namespace: stack.namespace,
          ui: stack.uiUrl,
          startedServer: stack.server !== undefined,
          startedWorkers: stack.workers.map((worker) => worker.kind),
          home: loadConfig().home,
        };
        if (options.json) process.stdout.write(`${JSON.stringify(ready)}\n`);
        else {
          process.stdout.write(
            `weft is up.\n  Temporal:  ${stack.address} (namespace ${stack.namespace})\n` +
              `  Web UI:    ${stack.uiUrl ?? 'see your Temporal server'}\n` +
              `  Workers:   ${ready.startedWorkers.join(', ') || 'already running elsewhere'}\n` +
              `  State:     ${ready.home}\nPress Ctrl-C to stop.\n`,
          );
        }
        // Runs until a signal; withStack's handler stops the stack and exits.
        await new Promise<never>(() => undefined);
      });
    });
}
