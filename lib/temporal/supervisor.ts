import fs from 'node:fs';
import path from 'node:path';
import { temporalTarget } from './connection';
import { reachable, startWorkerProcess, type RunningStack, type WorkerProcess } from './stack';

/**
 * `weft up`'s watch over what it started: a worker that dies is restarted with backoff (and said so), a Temporal
 * server that dies or stops answering is reported, and the state is kept in `WEFT_HOME/up.json` for `weft doctor`.
 */

/** What `weft up` last knew of its children: written on every change, read by `weft doctor`. */
export interface UpStatus {
  /** The `weft up` process; a status file whose pid is gone is stale. */
  pid: number;
  startedAt: string;
  updatedAt: string;
  temporal: { address: string; startedByUp: boolean; state: 'up' | 'down'; since: string; detail?: string };
  workers: {
    kind: string;
    instance?: string;
    pid: number | undefined;
    state: 'running' | 'restarting';
    restarts: number;
    lastExit?: { at: string; reason: string };
  }[];
}

export const upStatusFileName = 'up.json';

export interface SupervisorOptions {
  home: string;
  /** First restart delay in milliseconds, doubled per consecutive crash up to `maxBackoffMilliseconds`. Default 1000. */
  backoffMilliseconds?: number;
  /** Longest restart delay in milliseconds. Default 30000. */
  maxBackoffMilliseconds?: number;
  /** A worker that ran this long (milliseconds) before dying starts again from the first delay. Default 60000. */
  stableMilliseconds?: number;
  /** How often the Temporal server is asked whether it answers, in milliseconds. Default 5000. */
  healthIntervalMilliseconds?: number;
  /** One line per event (a restart, a dead server), for people: `weft up` prints them on stderr. */
  onEvent: (message: string) => void;
}

export interface Supervisor {
  /**
   * Stops watching and restarting. A restart already starting a worker stops that worker once it is up (and the
   * worker stops itself when `weft up` exits, through its IPC channel), so this does not wait for it.
   */
  stop(): Promise<void>;
}

function exitReason(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/** Reads `weft up`'s status file; undefined when there is none or the `weft up` that wrote it is gone. */
export function readUpStatus(home: string): UpStatus | undefined {
  let status: UpStatus;
  try {
    status = JSON.parse(fs.readFileSync(path.join(home, upStatusFileName), 'utf8')) as UpStatus;
  } catch {
    return undefined;
  }
  try {
    process.kill(status.pid, 0);
  } catch {
    return undefined;
  }
  return status;
}

export function superviseStack(stack: RunningStack, options: SupervisorOptions): Supervisor {
  const backoff = options.backoffMilliseconds ?? 1000;
  const maxBackoff = options.maxBackoffMilliseconds ?? 30_000;
  const stable = options.stableMilliseconds ?? 60_000;
  const now = () => new Date().toISOString();
  let stopping = false;
  /** Backoff waits in progress: stop() ends them at once. */
  const waits = new Map<NodeJS.Timeout, () => void>();
  const status: UpStatus = {
    pid: process.pid,
    startedAt: now(),
    updatedAt: now(),
    temporal: { address: stack.address, startedByUp: stack.server !== undefined, state: 'up', since: now() },
    workers: stack.workers.map((worker) => ({
      kind: worker.kind,
      instance: worker.options.instance,
      pid: worker.process.pid,
      state: 'running',
      restarts: 0,
    })),
  };
  const statusFile = path.join(options.home, upStatusFileName);
  const save = (): void => {
    status.updatedAt = now();
    // Best effort (a full disk must not stop the supervisor): written whole, then renamed over the old one.
    try {
      const temporary = `${statusFile}.${process.pid}.tmp`;
      fs.writeFileSync(temporary, `${JSON.stringify(status, null, 2)}\n`);
      fs.renameSync(temporary, statusFile);
    } catch {
      // doctor then shows the last state written
    }
  };
  const sleep = (milliseconds: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        waits.delete(timer);
        resolve();
      }, milliseconds);
      waits.set(timer, resolve);
    });

  const nameOf = (worker: WorkerProcess) =>
    `${worker.kind}${worker.options.instance ? `-${worker.options.instance}` : ''} worker`;

  /** Restarts a dead worker after the backoff; a start that fails counts as one more crash and waits longer. */
  const restart = async (worker: WorkerProcess, slot: number, crashes: number): Promise<void> => {
    const entry = status.workers[slot]!;
    for (let consecutive = crashes; ; consecutive++) {
      const delay = Math.min(maxBackoff, backoff * 2 ** (consecutive - 1));
      options.onEvent(
        `weft up: restarting the ${nameOf(worker)} in ${(delay / 1000).toFixed(1)} s (restart ${entry.restarts + 1})`,
      );
      await sleep(delay);
      if (stopping) return;
      let replacement: WorkerProcess;
      try {
        replacement = await startWorkerProcess(worker.kind, worker.options);
      } catch (error) {
        if (stopping) return;
        const reason = (error as Error).message.split('\n')[0]!;
        entry.restarts++;
        entry.lastExit = { at: now(), reason: `restart failed: ${reason}` };
        save();
        options.onEvent(`weft up: restarting the ${nameOf(worker)} failed: ${reason}`);
        continue;
      }
      if (stopping) {
        await replacement.stop();
        return;
      }
      // In place, so the stack's stop() and signalAll() reach the new process.
      const index = stack.workers.indexOf(worker);
      if (index >= 0) stack.workers[index] = replacement;
      else stack.workers.push(replacement);
      entry.restarts++;
      entry.state = 'running';
      entry.pid = replacement.process.pid;
      save();
      options.onEvent(`weft up: the ${nameOf(worker)} is polling again (pid ${replacement.process.pid})`);
      watch(replacement, slot, consecutive);
      return;
    }
  };

  const watch = (worker: WorkerProcess, slot: number, crashes: number): void => {
    const startedAt = Date.now();
    worker.process.once('exit', (code, signal) => {
      if (stopping) return;
      const entry = status.workers[slot]!;
      entry.state = 'restarting';
      entry.pid = undefined;
      entry.lastExit = { at: now(), reason: exitReason(code, signal) };
      save();
      options.onEvent(`weft up: the ${nameOf(worker)} (pid ${worker.process.pid}) died (${exitReason(code, signal)})`);
      // A worker that ran for a while before dying starts again from the first delay.
      restart(worker, slot, Date.now() - startedAt >= stable ? 1 : crashes + 1).catch((error: unknown) =>
        options.onEvent(`weft up: restarting the ${nameOf(worker)} stopped: ${(error as Error).message}`),
      );
    });
  };
  stack.workers.forEach((worker, slot) => watch(worker, slot, 0));

  const markTemporal = (state: 'up' | 'down', detail: string | undefined): void => {
    if (status.temporal.state === state) return;
    status.temporal = { ...status.temporal, state, since: now(), detail };
    save();
    options.onEvent(
      state === 'down'
        ? `weft up: the Temporal server at ${stack.address} ${detail}; workers cannot poll until it is back`
        : `weft up: the Temporal server at ${stack.address} answers again`,
    );
  };
  stack.server?.process.once('exit', (code, signal) => {
    if (!stopping) markTemporal('down', `exited (${exitReason(code, signal)}); restart weft up`);
  });
  const target = temporalTarget();
  const probe = {
    ...target,
    address: stack.address,
    connectionOptions: { ...target.connectionOptions, address: stack.address },
  };
  const serverGone = () => stack.server !== undefined && stack.server.process.exitCode !== null;
  const health = setInterval(() => {
    // An embedded server that exited was reported with its exit status; asking it again would only say "down".
    if (stopping || serverGone() || stack.server?.process.signalCode) return;
    void reachable(probe).then((answers) => {
      if (!stopping) markTemporal(answers ? 'up' : 'down', answers ? undefined : 'does not answer');
    });
  }, options.healthIntervalMilliseconds ?? 5000);
  health.unref();
  save();

  return {
    stop: async () => {
      stopping = true;
      clearInterval(health);
      for (const [timer, resolve] of waits) {
        clearTimeout(timer);
        resolve();
      }
      waits.clear();
      fs.rmSync(statusFile, { force: true });
    },
  };
}
