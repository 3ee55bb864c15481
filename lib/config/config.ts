import path from 'node:path';
import { z } from 'zod';

/**
 * weft's own settings, read once from the environment. The Temporal connection is not here:
 * it follows Temporal's standard TEMPORAL_* variables (see lib/temporal/connection.ts).
 */
const environmentSchema = z.object({
  /** Directory that holds all local state (lineage database, vectors, models, Temporal's SQLite file). */
  WEFT_HOME: z.string().min(1).default('.weft'),
  /** Lineage store: `sqlite:///abs/path.db` or `postgres://user:pass@host:port/db`. Default: SQLite in WEFT_HOME. */
  WEFT_LINEAGE_URL: z.string().min(1).optional(),
  /** Vector store: a Qdrant URL (`http://host:6333`) or unset for the embedded sqlite-vec store in WEFT_HOME. */
  WEFT_VECTOR_URL: z.string().url().optional(),
  /** API key for Qdrant, when WEFT_VECTOR_URL points at a secured server. */
  WEFT_VECTOR_API_KEY: z.string().optional(),
  /** Concurrent inference activities one gpu worker runs (its activity slots). */
  WEFT_GPU_SLOTS: z.coerce.number().int().min(1).max(256).default(2),
  /** onnxruntime execution provider for inference. `cuda` falls back to `cpu` with a warning when it cannot load. */
  WEFT_EXECUTION_PROVIDER: z.enum(['cpu', 'cuda']).default('cpu'),
  /**
   * Greedy requests decode inside onnxruntime (generate_greedy.onnx): `auto` (default) on CPU and CUDA, `never` keeps
   * the step-by-step loop, whose session alone holds the weights (SmolLM2 on CPU: 719 instead of 1,312 MB resident).
   */
  WEFT_GREEDY_IN_GRAPH: z.enum(['auto', 'always', 'never']).default('auto'),
  /**
   * Weights of the CPU's in-graph greedy decoder: `float32` (default) or `int8` (generate_greedy.int8.onnx, written
   * by the export: about 2x faster batch-1 answers, which can differ from float32's; see the README's numbers).
   */
  WEFT_CPU_WEIGHTS: z.enum(['float32', 'int8']).default('float32'),
  /**
   * What decodes greedy requests: `onnxruntime` (default: weft's ONNX graphs) or `torch` (trainer/decode_engine.py, a
   * Python process per model reading the artifact's hf/ weights: on CUDA a torch.compile'd step replayed as a CUDA
   * graph, about 3x the onnxruntime in-graph decoder on the 1.1B model at batch 1; see the README).
   */
  WEFT_ENGINE: z.enum(['onnxruntime', 'torch']).default('onnxruntime'),
  /**
   * How the torch engine's CUDA decode step runs: `triton` (default: batch 1 through trainer/decode_kernels.py's
   * Triton kernels, checked against PyTorch when first built; larger batches as `default+cdt`), `default+cdt` or
   * `default` (torch.compile'd), `off` (eager kernels). Every mode replays one CUDA graph per step.
   */
  WEFT_TORCH_COMPILE: z.enum(['off', 'default', 'default+cdt', 'triton']).default('triton'),
  /** CUDA device ordinal a gpu worker uses when WEFT_EXECUTION_PROVIDER=cuda. */
  WEFT_CUDA_DEVICE_ID: z.coerce.number().int().min(0).default(0),
  /** Where built and fine-tuned model folders live. Default: WEFT_HOME/models. */
  WEFT_MODELS_DIR: z.string().min(1).optional(),
  /**
   * The base chat model `weft demo` and `weft ask` set the demo project up with: `smollm2` (SmolLM2-135M-Instruct,
   * the default) or `base-chat` (the tiny corpus-trained Llama the fast tests use).
   */
  WEFT_DEMO_BASE_MODEL: z.enum(['smollm2', 'base-chat']).default('smollm2'),
  /** W&B-style entity and project that refs are written under. */
  WEFT_ENTITY: z.string().min(1).default('weft'),
  WEFT_PROJECT: z.string().min(1).default('rag-demo'),
  /** Organisation that registry refs are written under (`wandb-artifact:///<org>/wandb-registry-…`). */
  WEFT_ORG: z.string().min(1).default('weft'),
  /** Python interpreter that runs the trainer. Default: the project's .venv. */
  WEFT_PYTHON: z.string().min(1).optional(),
  /** Port of the embedded Temporal server's frontend when TEMPORAL_ADDRESS is unset. */
  WEFT_TEMPORAL_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
  /** Port of the embedded Temporal Web UI. */
  WEFT_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  /** The Temporal Web UI workflow ids link to; default http://127.0.0.1:WEFT_UI_PORT unless TEMPORAL_ADDRESS names a server. */
  WEFT_TEMPORAL_UI_URL: z
    .string()
    .url()
    .regex(/^https?:\/\//, 'must be an http:// or https:// URL')
    .optional(),
  /** Where `weft serve` is reachable (http://host:port): CLI commands that print refs add their web UI links. */
  WEFT_SERVE_URL: z
    .string()
    .url()
    .regex(/^https?:\/\//, 'must be an http:// or https:// URL')
    .optional(),
  /** Regression alerts of the nightly re-evaluation: a command run with the alert as JSON on stdin… */
  WEFT_ALERT_COMMAND: z.string().min(1).optional(),
  /** …and/or a URL the alert is POSTed to as JSON. */
  WEFT_ALERT_WEBHOOK_URL: z.string().url().optional(),
  /** Log level for workers: TRACE, DEBUG, INFO, WARN, ERROR. */
  WEFT_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
});

export interface WeftConfig {
  home: string;
  lineageUrl: string;
  vectorUrl: string | undefined;
  vectorApiKey: string | undefined;
  gpuSlots: number;
  executionProvider: 'cpu' | 'cuda';
  cudaDeviceId: number;
  greedyInGraph: 'auto' | 'always' | 'never';
  cpuWeights: 'float32' | 'int8';
  engine: 'onnxruntime' | 'torch';
  torchCompile: 'off' | 'default' | 'default+cdt' | 'triton';
  modelsDir: string;
  demoBaseModel: 'smollm2' | 'base-chat';
  entity: string;
  project: string;
  org: string;
  python: string;
  temporalPort: number;
  alertCommand: string | undefined;
  alertWebhookUrl: string | undefined;
  uiPort: number;
  temporalUiUrl: string | undefined;
  serveUrl: string | undefined;
  logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

export class ConfigError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The project root (where package.json lives), so defaults work from any working directory inside it. */
export const projectRoot = path.resolve(__dirname, '..', '..');

export function parseConfig(environment: NodeJS.ProcessEnv): WeftConfig {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new ConfigError(`Invalid weft configuration in the environment — ${problems}`);
  }
  const values = parsed.data;
  const home = path.resolve(values.WEFT_HOME);
  return {
    home,
    lineageUrl: values.WEFT_LINEAGE_URL ?? `sqlite://${path.join(home, 'lineage.db')}`,
    vectorUrl: values.WEFT_VECTOR_URL,
    vectorApiKey: values.WEFT_VECTOR_API_KEY,
    gpuSlots: values.WEFT_GPU_SLOTS,
    executionProvider: values.WEFT_EXECUTION_PROVIDER,
    cudaDeviceId: values.WEFT_CUDA_DEVICE_ID,
    greedyInGraph: values.WEFT_GREEDY_IN_GRAPH,
    cpuWeights: values.WEFT_CPU_WEIGHTS,
    engine: values.WEFT_ENGINE,
    torchCompile: values.WEFT_TORCH_COMPILE,
    modelsDir: path.resolve(values.WEFT_MODELS_DIR ?? path.join(home, 'models')),
    demoBaseModel: values.WEFT_DEMO_BASE_MODEL,
    entity: values.WEFT_ENTITY,
    project: values.WEFT_PROJECT,
    org: values.WEFT_ORG,
    python: values.WEFT_PYTHON ?? path.join(projectRoot, '.venv', 'bin', 'python'),
    temporalPort: values.WEFT_TEMPORAL_PORT,
    alertCommand: values.WEFT_ALERT_COMMAND,
    alertWebhookUrl: values.WEFT_ALERT_WEBHOOK_URL,
    uiPort: values.WEFT_UI_PORT,
    temporalUiUrl: values.WEFT_TEMPORAL_UI_URL,
    serveUrl: values.WEFT_SERVE_URL,
    logLevel: values.WEFT_LOG_LEVEL,
  };
}

let cached: WeftConfig | undefined;

/** The process's configuration, parsed once on first use. */
export function loadConfig(): WeftConfig {
  cached ??= parseConfig(process.env);
  return cached;
}
