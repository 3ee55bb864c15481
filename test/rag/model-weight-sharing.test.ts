/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createRegistryActivities } from '../../activities/registry';
import { projectRoot } from '../../lib/config/config';
import { loadChatModel, releaseAllSessions, type GenerationRequest } from '../../lib/inference';
import { openLineageStore, type LineageStore } from '../../lib/lineage';
import { logBaseModelFolder } from '../../lib/rag/demo-project';
import { modelCacheFor } from '../../lib/rag/model-cache';
import { chatModelDirectory, pythonPath, requireBuiltModels } from '../inference/built-models';

/** Bytes of every blob the store holds (one file per distinct content). */
function storedBlobBytes(blobDirectory: string): number {
  if (!fs.existsSync(blobDirectory)) return 0;
  let total = 0;
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/^[0-9a-f]{64}$/.test(entry.name)) total += fs.statSync(full).size;
    }
  };
  walk(path.join(blobDirectory, 'sha256'));
  return total;
}

/** Runs a trainer module; a failure shows its last JSON line (the trainer's error event). */
function trainer(args: string[]): void {
  try {
    execFileSync(pythonPath, ['-m', ...args], {
      cwd: projectRoot,
      env: { ...process.env, HF_HUB_OFFLINE: '1', TQDM_DISABLE: '1', PYTHONWARNINGS: 'ignore' },
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
  } catch (error) {
    const output = String((error as { stdout?: string }).stdout ?? '')
      .trim()
      .split('\n')
      .at(-1);
    throw new Error(`python -m ${args[0]} failed: ${output}`);
  }
}

const size = (file: string) => fs.statSync(file).size;

/**
 * The tiny trained base (4 layers) in the per-layer layout, and a real demo-cpu fine-tune of it with LoRA on its top
 * layer only (trainer/weight_files.py): the fine-tuned version must add that layer's files to the blob store, and
 * little else, while its folder is as large as a whole model.
 */
describe('a fine-tuned model version stores only the layers it changed', () => {
  let directory: string;
  let store: LineageStore;
  const base = () => path.join(directory, 'base');
  const run = () => path.join(directory, 'run');

  beforeAll(() => {
    requireBuiltModels();
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-weight-sharing-'));
    fs.cpSync(path.join(chatModelDirectory, '..', 'hf'), path.join(base(), 'hf'), { recursive: true });
    trainer(['trainer.weight_files', 'shard-hf', path.join(base(), 'hf')]);
    trainer(['trainer.export_onnx', '--model', path.join(base(), 'hf'), '--out', path.join(base(), 'onnx')]);
    const rows = path.join(directory, 'train.jsonl');
    trainer(
      [
        'trainer.make_chat_dataset',
        '--qa',
        'data/climate/qa-train.jsonl',
        '--corpus',
        'data/climate/corpus.jsonl',
      ].concat(['--out', rows]),
    );
    trainer(
      ['trainer.finetune', '--base', path.join(base(), 'hf'), '--train', rows, '--out', run(), '--config', 'demo-cpu']
        .concat(['--max-steps', '1', '--batch-size', '2', '--lora-top-layers', '1'])
        .concat(['--learning-rate', '0.01', '--warmup-steps', '0', '--device', 'cpu']),
    );
  }, 600_000);

  beforeEach(async () => {
    store = await openLineageStore(`sqlite://${path.join(directory, 'home', 'lineage.db')}`);
  });

  afterEach(async () => {
    await store?.close();
    fs.rmSync(path.join(directory, 'home'), { recursive: true, force: true });
  });

  afterAll(async () => {
    await releaseAllSessions();
    fs.rmSync(directory, { recursive: true, force: true });
  });

  async function logBaseThenTuned() {
    const blobs = path.join(directory, 'home', 'blobs');
    const baseArtifact = await logBaseModelFolder({ store }, path.join(base(), 'onnx'), {
      name: 'base-chat',
      description: 'tiny base, per-layer weight files',
      builtBy: 'test',
    });
    const afterBase = storedBlobBytes(blobs);
    const registry = createRegistryActivities({ store, org: 'weft' });
    const registered: { artifactRef: string } = await new MockActivityEnvironment().run(registry.registerModel, {
      app: 'climate-rag',
      runKey: 'wf-sharing',
      workflowId: 'wf-sharing',
      baseModelRef: baseArtifact.ref,
      trainingDatasetRef: 'weave:///weft/rag-demo/object/climate-qa-train:abc',
      fineTune: {
        modelDirectory: run(),
        summary: {
          steps: 1,
          finalLoss: 1,
          tokensPerSecond: 1,
          trainSeconds: 1,
          resumedFromStep: 0,
          maxAbsLogitDifference: 1e-5,
        },
      },
    });
    return { baseArtifact, registered, added: storedBlobBytes(blobs) - afterBase, afterBase };
  }

  it('adds the changed layer (hf shard + ONNX weight file) and the small per-version files, not the shared layers', async () => {
    const { registered, added, afterBase } = await logBaseThenTuned();
    const tuned = await store.artifacts.get(registered.artifactRef);
    // The changed layer in HF, float32 ONNX and 8-bit ONNX (trainer/quantize_int8.py); the other layers' 8-bit files
    // quantize to the base's bytes and are shared like the float32 ones.
    const changedLayer =
      size(path.join(run(), 'hf', 'model-layer-003.safetensors')) +
      size(path.join(run(), 'onnx', 'weights.layer-003.bin')) +
      size(path.join(run(), 'onnx', 'weights.int8.layer-003.bin'));
    // Per version: the graph files (they record their weight files' digests) and weft-model.json.
    const graphs = ['model.onnx', 'generate_greedy.onnx', 'generate_greedy.int8.onnx', 'weft-model.json']
      .map((name) => size(path.join(run(), 'onnx', name)))
      .reduce((left, right) => left + right);
    expect(added).toBeGreaterThanOrEqual(changedLayer);
    expect(added).toBeLessThanOrEqual(changedLayer + graphs + 64 * 1024);
    // The version itself is a whole model (all its layers), as is the base the store holds already.
    expect(tuned.size).toBeGreaterThan(4 * added);
    expect(afterBase).toBeGreaterThan(4 * added);
    const paths = tuned.manifest.map((entry) => entry.path);
    expect(paths).toEqual(expect.arrayContaining(['weights.layer-000.bin', 'hf/model-layer-000.safetensors']));
    const digestOf = (artifactPaths: { path: string; digest?: string }[], name: string) =>
      artifactPaths.find((entry) => entry.path === name)?.digest;
    const baseManifest = (await store.artifacts.get('wandb-artifact:///weft/rag-demo/base-chat:v0')).manifest;
    expect(digestOf(tuned.manifest, 'weights.layer-000.bin')).toBe(digestOf(baseManifest, 'weights.layer-000.bin'));
    expect(digestOf(tuned.manifest, 'weights.int8.layer-000.bin')).toBe(
      digestOf(baseManifest, 'weights.int8.layer-000.bin'),
    );
    expect(digestOf(tuned.manifest, 'weights.layer-003.bin')).not.toBe(digestOf(baseManifest, 'weights.layer-003.bin'));
  });

  it('generates what the single-file export of the same weights generates, host loop and in-graph', async () => {
    const { baseArtifact, registered } = await logBaseThenTuned();
    const cache = modelCacheFor(store, path.join(directory, 'home'));
    const shared = (await cache.materialize(baseArtifact.ref, ['model.onnx', 'weights.shared.bin'])).directory;
    const requests: GenerationRequest[] = [
      { messages: [{ role: 'user', content: 'When was the Kyoto Protocol adopted?' }], maxNewTokens: 16 },
      { prompt: 'Sea level rises as oceans warm and', maxNewTokens: 16 },
    ];
    for (const greedyInGraph of ['never', 'always'] as const) {
      const singleFile = await loadChatModel(chatModelDirectory, { greedyInGraph });
      const perLayer = await loadChatModel(shared, { greedyInGraph });
      expect(perLayer.decodesInGraph).toBe(greedyInGraph === 'always');
      const expected = (await singleFile.generate(requests)).map((result) => result.tokenIds);
      expect((await perLayer.generate(requests)).map((result) => result.tokenIds)).toEqual(expected);
    }
    // A weight file altered in the cached copy (same size) is noticed by the next process and fetched again.
    const weightFile = path.join(shared, 'weights.layer-000.bin');
    const original = fs.readFileSync(weightFile);
    const altered = Buffer.from(original);
    altered[altered.length - 1] ^= 0xff;
    fs.writeFileSync(weightFile, altered);
    const again = await modelCacheFor(store, path.join(directory, 'home')).materialize(baseArtifact.ref);
    expect(fs.readFileSync(path.join(again.directory, 'weights.layer-000.bin')).equals(original)).toBe(true);
    // The fine-tuned version loads from its artifact as its own model (its graph's digest differs from the base's).
    const tunedFolder = (await cache.materialize(registered.artifactRef)).directory;
    const tuned = await loadChatModel(tunedFolder, { greedyInGraph: 'always' });
    const base = await loadChatModel(shared, { greedyInGraph: 'always' });
    expect(tuned.digest).not.toBe(base.digest);
    const host = await loadChatModel(tunedFolder, { greedyInGraph: 'never' });
    expect((await tuned.generate(requests)).map((result) => result.tokenIds)).toEqual(
      (await host.generate(requests)).map((result) => result.tokenIds),
    );
  });
});
