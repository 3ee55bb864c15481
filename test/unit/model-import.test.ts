import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelImportError, importBaseModel } from '../../lib/training/model-import';
import { pythonPath } from '../inference/built-models';

/** `weft models import` refuses what it cannot serve with the trainer's reason, and writes nothing. */
describe('importing a base model', () => {
  let scratch: string;

  beforeEach(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-model-import-'));
  });
  afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

  it('refuses an unsupported architecture, naming the supported ones, and leaves no folder', async () => {
    const folder = path.join(scratch, 'my-bert');
    fs.mkdirSync(folder);
    fs.writeFileSync(
      path.join(folder, 'config.json'),
      JSON.stringify({ model_type: 'bert', architectures: ['BertModel'], hidden_size: 32, num_attention_heads: 2 }),
    );
    const outputDirectory = path.join(scratch, 'models', 'imported', 'my-bert');
    const attempt = importBaseModel({ python: pythonPath, source: folder, outputDirectory });
    await expect(attempt).rejects.toThrow(ModelImportError);
    await expect(attempt).rejects.toMatchObject({ kind: 'unsupported_architecture' });
    await expect(attempt).rejects.toThrow(/model_type 'bert' \(BertModel\) is not supported.*llama.*mistral/);
    expect(fs.existsSync(path.join(scratch, 'models'))).toBe(false);
  });

  it('refuses a file that is neither a folder nor a .gguf file before running anything', async () => {
    const file = path.join(scratch, 'weights.bin');
    fs.writeFileSync(file, 'not a model');
    const attempt = importBaseModel({ python: '/nonexistent/python', source: file, outputDirectory: scratch });
    await expect(attempt).rejects.toMatchObject({ kind: 'unsupported_source' });
    await expect(attempt).rejects.toThrow(/neither a Hugging Face model folder nor a \.gguf file/);
  });
});
