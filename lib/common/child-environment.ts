/**
 * Environments for child processes: each child gets what it uses, never a secret meant for another
 * process (the serve token, a Temporal API key, a vector-store key in the trainer).
 */

/** Names that hold credentials: never passed to a child that does not connect anywhere. */
const secretName = /(TOKEN|API_KEY|SECRET|PASSWORD|CREDENTIALS)/i;

/**
 * What the Python trainer reads: the system basics, Python, CUDA/torch/HF tuning, and where models live.
 * It makes no network call (HF_HUB_OFFLINE) and talks to no weft service.
 */
const trainerVariables = [
  /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|TZ|TMPDIR|TEMP|TMP|LD_LIBRARY_PATH|VIRTUAL_ENV)$/,
  /^LC_/,
  /^PYTHON/,
  /^(CUDA|NVIDIA|HF|TRANSFORMERS|TORCH|PYTORCH|OMP|MKL|OPENBLAS|TOKENIZERS|XDG)_/,
  /^WEFT_(HOME|MODELS_DIR)$/,
];

/** The trainer's environment: the allow-listed variables of `parent` (no secret among them) plus `extra`. */
export function trainerEnvironment(parent: NodeJS.ProcessEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && !secretName.test(name) && trainerVariables.some((pattern) => pattern.test(name))) {
      environment[name] = value;
    }
  }
  return { ...environment, ...extra };
}

/**
 * A worker's environment: the parent's, less `weft serve`'s token (workers serve no HTTP). Workers keep
 * TEMPORAL_* (they connect to Temporal, also with an API key) and the store/vector settings they use.
 */
export function workerEnvironment(parent: NodeJS.ProcessEnv, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const environment = { ...parent, ...extra };
  delete environment.WEFT_SERVE_TOKEN;
  return environment;
}
