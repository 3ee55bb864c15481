/**
 * weft's tokenizer (lib/inference/tokenizer) against @huggingface/tokenizers (the library transformers.js uses), in
 * the same run on the same tokenizer.json and texts:
 *
 *   npx tsx bench/tokenizer.ts [--model DIR] [--reference FILE] [--repeat 5]
 *
 * Default: SmolLM2-135M-Instruct as setup builds it and its transformers reference (trainer/reference_outputs.py
 * --chat-only: every corpus document, every qa-eval question, edge cases and rendered chat prompts). Prints, for
 * each implementation, how many texts give transformers' ids and decode back to the text, and encode tokens/s
 * (fastest of --repeat passes), then the ratio. It decides which tokenizer lib/inference ships (see tokenizer.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Tokenizer as LibraryTokenizer } from '@huggingface/tokenizers';
import { projectRoot } from '../lib/config/config';
import { Tokenizer } from '../lib/inference';

const modelsDirectory = path.resolve(
  process.env.WEFT_MODELS_DIR ?? path.join(process.env.WEFT_HOME ?? path.join(projectRoot, '.weft'), 'models'),
);

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1] : fallback;
}

interface Implementation {
  name: string;
  encode: (text: string) => number[];
  decode: (ids: number[]) => string;
}

function main(): void {
  const folder = option('model', path.join(modelsDirectory, 'smollm2', 'onnx'));
  const reference = JSON.parse(
    readFileSync(option('reference', path.join(modelsDirectory, 'smollm2', 'reference.json')), 'utf8'),
  ) as { tokenization: { text: string; ids: number[] }[]; chat_prompts: { text: string; ids: number[] }[] };
  const repeat = Number(option('repeat', '5'));
  const cases = [...reference.tokenization, ...reference.chat_prompts];

  const weft = Tokenizer.fromFolder(folder);
  const library = new LibraryTokenizer(
    JSON.parse(readFileSync(path.join(folder, 'tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(path.join(folder, 'tokenizer_config.json'), 'utf8')),
  );
  const implementations: Implementation[] = [
    {
      name: 'weft (lib/inference/tokenizer)',
      encode: (text) => weft.encode(text, { addSpecialTokens: false }),
      decode: (ids) => weft.decode(ids),
    },
    {
      name: '@huggingface/tokenizers 0.2.0',
      encode: (text) => library.encode(text, { add_special_tokens: false }).ids,
      // The library throws on an empty id list ("token_ids must be a non-empty array").
      decode: (ids) => (ids.length === 0 ? '' : library.decode(ids, { skip_special_tokens: false })),
    },
  ];

  const rates: number[] = [];
  for (const implementation of implementations) {
    let sameIds = 0;
    let roundTrips = 0;
    for (const { text, ids } of cases) {
      const got = implementation.encode(text);
      if (got.length === ids.length && got.every((id, index) => id === ids[index])) sameIds++;
      if (implementation.decode(ids) === text) roundTrips++;
    }
    for (const { text } of cases) implementation.encode(text); // warm-up
    let best = Infinity;
    let tokens = 0;
    for (let pass = 0; pass < repeat; pass++) {
      tokens = 0;
      const started = performance.now();
      for (const { text } of cases) tokens += implementation.encode(text).length;
      best = Math.min(best, (performance.now() - started) / 1000);
    }
    rates.push(tokens / best);
    console.log(
      `${implementation.name.padEnd(34)} ids = transformers: ${sameIds}/${cases.length}  ` +
        `decode round trip: ${roundTrips}/${cases.length}  encode: ${Math.round(tokens / best).toLocaleString()} tokens/s`,
    );
  }
  console.log(`weft / library encode speed: ${(rates[0] / rates[1]).toFixed(2)}x (${folder})`);
}

main();
