import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../lib/config/config';

/** The demo models setup builds; tests that need them fail (not skip) with what to run when they are absent. */
export function requireBuiltModels(): { chat: string; embedding: string } {
  const modelsDirectory = parseConfig({
    WEFT_HOME: process.env.WEFT_HOME,
    WEFT_MODELS_DIR: process.env.WEFT_MODELS_DIR,
  }).modelsDir;
  const chat = path.join(modelsDirectory, 'base-chat', 'onnx');
  const embedding = path.join(modelsDirectory, 'minilm', 'onnx');
  for (const folder of [chat, embedding]) {
    if (!fs.existsSync(path.join(folder, 'model.onnx'))) {
      throw new Error(`The demo models are not built (missing ${folder}/model.onnx): run bash scripts/setup.sh`);
    }
  }
  return { chat, embedding };
}
