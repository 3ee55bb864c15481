/**
 * Bytes a fine-tuned model version costs: on disk (its run folder: onnx/ + hf/) and in the blob store after its base
 * (what logging it adds to a store that already holds the base). Each pair is logged into a fresh SQLite store in a
 * temporary folder with weft's own code: the base as `weft demo` logs it (logBaseModelFolder), the version as the
 * registerModel activity does (fineTunedModelFiles). Pairs in the single-file layout (before trainer/weight_files.py)
 * and in the per-layer layout print side by side.
 *
 * Run: npx tsx bench/artifact-bytes.ts --pair <label> <base folder> <run folder> [--pair …] [--json]
 *   <base folder> holds onnx/ and hf/ (e.g. $WEFT_MODELS_DIR/smollm2); <run folder> is a fine-tune's output folder
 *   (onnx/ and hf/, e.g. $WEFT_MODELS_DIR/runs/<run>).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fineTunedModelFiles } from '../activities/registry';
import { openLineageStore } from '../lib/lineage';
import { logBaseModelFolder } from '../lib/rag/demo-project';

interface PairResult {
  label: string;
  baseStoredBytes: number;
  versionFolderBytes: number;
  versionFiles: number;
  versionAddsBytes: number;
  versionAddsFiles: number;
}

function folderBytes(folder: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    total += entry.isDirectory() ? folderBytes(full) : entry.isFile() ? fs.statSync(full).size : 0;
  }
  return total;
}

function blobCountAndBytes(blobDirectory: string): { files: number; bytes: number } {
  const root = path.join(blobDirectory, 'sha256');
  let files = 0;
  let bytes = 0;
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/^[0-9a-f]{64}$/.test(entry.name)) {
        files += 1;
        bytes += fs.statSync(full).size;
      }
    }
  };
  if (fs.existsSync(root)) walk(root);
  return { files, bytes };
}

async function measurePair(label: string, baseFolder: string, runFolder: string): Promise<PairResult> {
  for (const folder of [path.join(baseFolder, 'onnx'), path.join(runFolder, 'onnx'), path.join(runFolder, 'hf')]) {
    if (!fs.existsSync(folder))
      throw new Error(`${folder} does not exist: pass a base folder and a fine-tune's run folder`);
  }
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-artifact-bytes-'));
  const store = await openLineageStore(`sqlite://${path.join(home, 'lineage.db')}`);
  try {
    const blobs = path.join(home, 'blobs');
    await logBaseModelFolder({ store }, path.join(baseFolder, 'onnx'), {
      name: 'base',
      description: `${label}: base`,
      builtBy: 'bench/artifact-bytes.ts',
    });
    const base = blobCountAndBytes(blobs);
    const files = fineTunedModelFiles(runFolder);
    await store.artifacts.log({ name: 'fine-tuned', type: 'model', files });
    const after = blobCountAndBytes(blobs);
    return {
      label,
      baseStoredBytes: base.bytes,
      versionFolderBytes: folderBytes(path.join(runFolder, 'onnx')) + folderBytes(path.join(runFolder, 'hf')),
      versionFiles: files.length,
      versionAddsBytes: after.bytes - base.bytes,
      versionAddsFiles: after.files - base.files,
    };
  } finally {
    await store.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

async function main(): Promise<void> {
  const pairs: Array<[string, string, string]> = [];
  process.argv.forEach((argument, index) => {
    if (argument !== '--pair') return;
    const [label, base, run] = process.argv.slice(index + 1, index + 4);
    if (!label || !base || !run) throw new Error('--pair takes three values: <label> <base folder> <run folder>');
    pairs.push([label, path.resolve(base), path.resolve(run)]);
  });
  if (pairs.length === 0) throw new Error('Pass at least one --pair <label> <base folder> <run folder>.');
  const results: PairResult[] = [];
  for (const [label, base, run] of pairs) results.push(await measurePair(label, base, run));
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(results));
    return;
  }
  const rows = [
    ['layout', 'base in store', 'version folder on disk', 'version adds to store', 'files added / in version'],
    ...results.map((result) => [
      result.label,
      megabytes(result.baseStoredBytes),
      megabytes(result.versionFolderBytes),
      megabytes(result.versionAddsBytes),
      `${result.versionAddsFiles} / ${result.versionFiles}`,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  '));
  if (results.length > 1) {
    const [first, ...rest] = results;
    for (const result of rest) {
      console.log(
        `${result.label} vs ${first!.label}: version adds ${(first!.versionAddsBytes / result.versionAddsBytes).toFixed(1)}x ` +
          `fewer bytes to the store; its folder is ${(first!.versionFolderBytes / result.versionFolderBytes).toFixed(2)}x smaller`,
      );
    }
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
