import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { projectRoot } from '../config/config';

/** The checkpoint cannot become a base model (unsupported architecture, malformed folder, failed check): not retryable. */
export class ModelImportError extends Error {
  constructor(
    message: string,
    /** The trainer's failure kind: unsupported_architecture, not_a_model_folder, no_weights, logits_mismatch, … */
    readonly kind: string,
  ) {
    super(message);
    this.name = 'ModelImportError';
  }
}

export interface ModelImportOptions {
  python: string;
  /** A GGUF file or a Hugging Face model folder. */
  source: string;
  /** Receives hf/ (the checked Hugging Face folder) and onnx/ (its export); replaced only when both pass. */
  outputDirectory: string;
  onProgress?: (message: string) => void;
}

export interface ImportedModel {
  hfDirectory: string;
  onnxDirectory: string;
  provenance: Record<string, unknown>;
}

/** Runs one `python -m trainer.<module>` step and returns its `done` event; an `error` event becomes ModelImportError. */
function runTrainerModule(python: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-m', ...args], {
      cwd: projectRoot,
      env: { ...process.env, HF_HUB_OFFLINE: '1', TQDM_DISABLE: '1', PYTHONWARNINGS: 'ignore', PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let done: Record<string, unknown> | undefined;
    let failure: { kind: string; message: string } | undefined;
    const stderrTail: string[] = [];
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const event = JSON.parse(line) as Record<string, unknown>;
        if (event.event === 'done') done = event;
        if (event.event === 'error') failure = { kind: String(event.kind), message: String(event.message) };
      } catch {
        // Libraries print plain text on stdout too; the protocol lines are JSON.
      }
    });
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 12) stderrTail.shift();
    });
    child.once('error', (error) =>
      reject(new Error(`Could not start ${python}: ${error.message}. Run 'bash scripts/setup.sh'.`)),
    );
    child.once('close', (code) => {
      if (code === 0 && done) return resolve(done);
      if (failure) return reject(new ModelImportError(failure.message, failure.kind));
      reject(new Error(`python -m ${args[0]} exited with code ${code}; last output:\n${stderrTail.join('\n')}`));
    });
  });
}

/**
 * Turns a user's Llama-family checkpoint into a base model folder weft can fine-tune and serve: trainer.import_model
 * (architecture, chat template, saved-vs-source logits and greedy answer, weft-provenance.json) then
 * trainer.export_onnx (ONNX export checked against transformers). Nothing is left at outputDirectory on failure.
 */
export async function importBaseModel(options: ModelImportOptions): Promise<ImportedModel> {
  const source = path.resolve(options.source);
  if (!fs.existsSync(source)) throw new ModelImportError(`${source} does not exist.`, 'not_found');
  const isFolder = fs.statSync(source).isDirectory();
  if (!isFolder && !source.endsWith('.gguf')) {
    throw new ModelImportError(
      `${source} is neither a Hugging Face model folder nor a .gguf file: pass the folder that holds config.json, ` +
        'or a GGUF file.',
      'unsupported_source',
    );
  }
  const staging = `${path.resolve(options.outputDirectory)}.partial`;
  fs.rmSync(staging, { recursive: true, force: true });
  const hfDirectory = path.join(staging, 'hf');
  const onnxDirectory = path.join(staging, 'onnx');
  try {
    options.onProgress?.(`checking and converting ${source}`);
    const imported = await runTrainerModule(options.python, [
      'trainer.import_model',
      isFolder ? '--hf' : '--gguf',
      source,
      '--out',
      hfDirectory,
    ]);
    options.onProgress?.('exporting to ONNX and comparing with transformers');
    await runTrainerModule(options.python, ['trainer.export_onnx', '--model', hfDirectory, '--out', onnxDirectory]);
    const outputDirectory = path.resolve(options.outputDirectory);
    fs.rmSync(outputDirectory, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(outputDirectory), { recursive: true });
    fs.renameSync(staging, outputDirectory);
    return {
      hfDirectory: path.join(outputDirectory, 'hf'),
      onnxDirectory: path.join(outputDirectory, 'onnx'),
      provenance: imported.provenance as Record<string, unknown>,
    };
  } catch (error) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}
