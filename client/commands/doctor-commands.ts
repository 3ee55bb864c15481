import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config/config';
import { checkCudaProvider } from '../../lib/inference';
import { checkTemporal } from '../../lib/temporal/cluster-check';
import { temporalTarget } from '../../lib/temporal/connection';
import { reachable } from '../../lib/temporal/stack';
import { readUpStatus, type UpStatus } from '../../lib/temporal/supervisor';
import { findTemporalCli } from '../../lib/temporal/temporal-cli';
import { printJson } from '../output';

type Status = 'ok' | 'warn' | 'fail';

interface Check {
  name: string;
  status: Status;
  detail: string;
  commands?: string[];
}

/** The groups of checks `--only` picks from. */
const checkGroups = ['models', 'temporal-cli', 'inference', 'trainer', 'temporal', 'workers'] as const;
type CheckGroup = (typeof checkGroups)[number];

function parseOnly(value: string | undefined): Set<CheckGroup> {
  if (value === undefined) return new Set(checkGroups);
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(checkGroups as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(
      `--only takes a comma-separated list of ${checkGroups.join(', ')}; got '${unknown.join(', ') || value}'`,
    );
  }
  return new Set(names as CheckGroup[]);
}

interface TrainerDevices {
  torch: string;
  cuda: boolean;
  devices: number;
  /** Whether triton imports (the torch engine's batch-1 CUDA step, WEFT_TORCH_COMPILE=triton). */
  triton: boolean;
}

function trainerDevices(python: string): TrainerDevices | string {
  try {
    const output = execFileSync(
      python,
      [
        '-c',
        'import importlib.util, json, torch; print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(), "devices": torch.cuda.device_count(), "triton": importlib.util.find_spec("triton") is not None}))',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 },
    );
    return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as TrainerDevices;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split('\n').at(-1);
    return stderr || (error as Error).message;
  }
}

/** WEFT_ENGINE=torch: can the engine run where the workers would start it (torch, CUDA when asked, triton)? */
function decodeEngineCheck(config: ReturnType<typeof loadConfig>, trainer: TrainerDevices | string | undefined): Check {
  const name = 'decode-engine';
  if (typeof trainer !== 'object') {
    return { name, status: 'fail', detail: `WEFT_ENGINE=torch, but ${config.python} cannot import torch (${trainer})` };
  }
  if (config.executionProvider === 'cuda' && !trainer.cuda) {
    return {
      name,
      status: 'fail',
      detail: `WEFT_ENGINE=torch with WEFT_EXECUTION_PROVIDER=cuda, but torch ${trainer.torch} sees no CUDA device: the engine would refuse to start`,
    };
  }
  if (config.executionProvider === 'cuda' && config.torchCompile === 'triton' && !trainer.triton) {
    return {
      name,
      status: 'fail',
      detail: `WEFT_TORCH_COMPILE=triton, but ${config.python} has no triton: install it or set WEFT_TORCH_COMPILE=default+cdt`,
    };
  }
  return {
    name,
    status: 'ok',
    detail:
      config.executionProvider === 'cuda'
        ? `torch ${trainer.torch} engine on cuda:${config.cudaDeviceId} (WEFT_TORCH_COMPILE=${config.torchCompile})`
        : `torch ${trainer.torch} engine on CPU (float32, eager)`,
  };
}

/** The Temporal server (does it answer?) and, while `weft up` runs, its workers: restarts and any down now. */
/** The server weft up started, when it no longer answers (undefined when weft up is not running). */
function upServerDown(home: string): Check | undefined {
  const up = readUpStatus(home);
  if (!up) return undefined;
  return {
    name: 'temporal',
    status: 'fail',
    detail: `weft up (pid ${up.pid}) uses the server at ${up.temporal.address}, which ${up.temporal.state === 'down' ? `${up.temporal.detail ?? 'does not answer'} (since ${up.temporal.since})` : 'does not answer'}: workers cannot poll; restart weft up`,
  };
}

/** weft up's workers: running, down, or restarted (undefined when weft up is not running). */
function upWorkersCheck(home: string): Check | undefined {
  const up = readUpStatus(home);
  if (!up) return undefined;
  const down = up.workers.filter((worker) => worker.state !== 'running');
  const restarted = up.workers.filter((worker) => worker.restarts > 0);
  const name = (worker: UpStatus['workers'][number]) => `${worker.kind}${worker.instance ? `-${worker.instance}` : ''}`;
  const details = up.workers.map(
    (worker) =>
      `${name(worker)} ${worker.state === 'running' ? `pid ${worker.pid}` : 'DOWN, restarting'}` +
      (worker.restarts > 0
        ? `, restarted ${worker.restarts}× (last: ${worker.lastExit?.reason} at ${worker.lastExit?.at})`
        : ''),
  );
  return {
    name: 'workers',
    status: down.length > 0 ? 'fail' : restarted.length > 0 ? 'warn' : 'ok',
    detail: `weft up (pid ${up.pid}): ${details.join('; ') || 'no workers of its own (they run elsewhere)'}`,
  };
}

/** `weft doctor`: what this host can run, and for each thing it cannot, what to do. */
export function registerDoctorCommands(program: Command): void {
  program
    .command('doctor')
    .description(
      'Check this host: built models, the Temporal CLI, the trainer, (with WEFT_EXECUTION_PROVIDER=cuda) whether\n' +
        'onnxruntime runs on the GPU — naming the missing library when it cannot —, and the Temporal server weft uses\n' +
        "(TEMPORAL_ADDRESS): reachable, the namespace there, weft's search attributes registered (printing the\n" +
        "'temporal operator' commands that register what is missing), pollers on its task queues; while weft up runs, its workers' restarts. Exits 1 when a check fails.",
    )
    .option('--json', 'print one JSON object: the checks and the CUDA report')
    .option('--only <checks>', `comma-separated: ${checkGroups.join(', ')} (default: all)`)
    .action(async (options: { json?: boolean; only?: string }) => {
      const only = parseOnly(options.only);
      const config = loadConfig();
      const checks: Check[] = [];
      const chatModel = path.join(config.modelsDir, 'smollm2', 'onnx', 'model.onnx');
      const testChatModel = path.join(config.modelsDir, 'base-chat', 'onnx', 'model.onnx');
      const embeddingModel = path.join(config.modelsDir, 'minilm', 'onnx', 'model.onnx');
      const missingModels = [chatModel, testChatModel, embeddingModel].filter((file) => !existsSync(file));
      if (only.has('models')) {
        checks.push(
          missingModels.length === 0
            ? { name: 'models', status: 'ok', detail: `demo models in ${config.modelsDir}` }
            : {
                name: 'models',
                status: 'fail',
                detail: `missing ${missingModels.join(', ')}: run bash scripts/setup.sh`,
              },
        );
      }
      if (only.has('temporal-cli')) {
        try {
          checks.push({ name: 'temporal-cli', status: 'ok', detail: findTemporalCli() });
        } catch (error) {
          // A deployment against a Temporal cluster needs no local CLI.
          checks.push({ name: 'temporal-cli', status: 'warn', detail: (error as Error).message });
        }
      }
      const wantsCuda = config.executionProvider === 'cuda';
      let cuda: Awaited<ReturnType<typeof checkCudaProvider>> | undefined;
      if (only.has('inference')) {
        cuda = await checkCudaProvider({
          modelPath: wantsCuda && missingModels.length === 0 ? chatModel : undefined,
          deviceId: config.cudaDeviceId,
        });
        const cudaWorks = cuda.sessionProvider === 'cuda';
        checks.push({
          name: 'inference',
          status: !wantsCuda || cudaWorks ? 'ok' : 'fail',
          detail: !wantsCuda
            ? `WEFT_EXECUTION_PROVIDER=cpu${cuda.missingLibraries.length > 0 ? ' (this onnxruntime-node has no CUDA provider)' : ''}`
            : cudaWorks
              ? `CUDA provider loaded on device ${config.cudaDeviceId} (onnxruntime-node ${cuda.onnxruntimeVersion})`
              : `WEFT_EXECUTION_PROVIDER=cuda, but inference would run on CPU: ${cuda.advice}${cuda.reason ? ` (onnxruntime: ${cuda.reason})` : ''}`,
        });
      }
      const trainer = only.has('trainer') || only.has('inference') ? trainerDevices(config.python) : undefined;
      if (only.has('inference') && config.engine === 'torch') checks.push(decodeEngineCheck(config, trainer));
      if (only.has('trainer') && trainer !== undefined) {
        checks.push(
          typeof trainer === 'string'
            ? {
                name: 'trainer',
                status: 'fail',
                detail: `${config.python} cannot import torch (${trainer}): run bash scripts/setup.sh or set WEFT_PYTHON`,
              }
            : {
                name: 'trainer',
                status: wantsCuda && !trainer.cuda ? 'warn' : 'ok',
                detail: `torch ${trainer.torch} at ${config.python}; ${trainer.cuda ? `${trainer.devices} CUDA device(s)` : 'no CUDA device: fine-tunes run on CPU'}`,
              },
        );
      }
      if (only.has('temporal')) {
        // A server weft up started and lost is reported as such; otherwise the full check of the server weft uses.
        const target = temporalTarget();
        const lost = (await reachable(target)) ? undefined : upServerDown(config.home);
        checks.push(...(lost ? [lost] : await checkTemporal(target)));
      }
      if (only.has('workers')) {
        const workers = upWorkersCheck(config.home);
        if (workers) checks.push(workers);
      }
      const failed = checks.some((check) => check.status === 'fail');
      if (options.json) printJson({ ok: !failed, executionProvider: config.executionProvider, checks, cuda });
      else {
        for (const check of checks)
          process.stdout.write(
            `${check.status.padEnd(4)}  ${check.name.padEnd(17)}  ${check.detail}\n` +
              (check.commands ?? []).map((command) => `      ${command}\n`).join(''),
          );
      }
      if (failed) process.exitCode = 1;
    });
}
