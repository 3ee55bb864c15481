/**
 * How far a float16 export's greedy generations follow transformers (the float32 reference of
 * trainer/reference_outputs.py), through weft's runtime: host loop and in-graph (generate_greedy.onnx), each prompt
 * alone. Where tokens part, PyTorch's top-1 minus top-2 logit gap at that step says whether it is a near-tie
 * (logits within the export's tolerance t can only flip the argmax where the gap is at most 2t) or a wrong graph.
 * The float16 export is made on demand (not by setup):
 *
 *   .venv/bin/python -m trainer.export_onnx --model $WEFT_MODELS_DIR/smollm2/hf --out /tmp/smollm2-fp16 --dtype float16
 *   npx tsx bench/float16-agreement.ts --model /tmp/smollm2-fp16 --reference $WEFT_MODELS_DIR/smollm2/reference.json
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadChatModel, releaseAllSessions } from '../lib/inference';
import type { Reference } from '../test/inference/built-models';

function argument(name: string): string {
  const index = process.argv.indexOf(`--${name}`);
  const value = index === -1 ? undefined : process.argv[index + 1];
  if (!value) throw new Error(`--${name} is required (see the header of bench/float16-agreement.ts)`);
  return value;
}

async function main(): Promise<void> {
  const folder = path.resolve(argument('model'));
  const reference = JSON.parse(fs.readFileSync(argument('reference'), 'utf8')) as Reference;
  const manifest = JSON.parse(fs.readFileSync(path.join(folder, 'weft-model.json'), 'utf8')) as {
    dtype: string;
    export_check: { max_abs_logit_diff: number };
  };
  const nearTie = 2 * manifest.export_check.max_abs_logit_diff;
  console.log(
    `${folder}: dtype ${manifest.dtype}, export max |logit diff| ${manifest.export_check.max_abs_logit_diff.toFixed(4)} ` +
      `(near-tie: PyTorch top-2 gap <= ${nearTie.toFixed(4)})`,
  );
  const summary: Record<string, { identical: number; nearTies: number; notNearTie: number }> = {};
  for (const greedyInGraph of ['never', 'always'] as const) {
    const model = await loadChatModel(folder, { greedyInGraph });
    const loop = greedyInGraph === 'never' ? 'host loop' : 'in-graph';
    const counts = { identical: 0, nearTies: 0, notNearTie: 0 };
    for (const [index, row] of reference.generations.entries()) {
      const result = await model.generate({ messages: row.messages, maxNewTokens: reference.max_new_tokens });
      const parted = row.output_ids.findIndex((token, step) => result.tokenIds[step] !== token);
      if (parted === -1) {
        counts.identical += 1;
        console.log(`${loop} prompt ${index}: ${row.output_ids.length}/${row.output_ids.length} tokens identical`);
        continue;
      }
      const gap = row.top2_gaps[parted]!;
      if (gap <= nearTie) counts.nearTies += 1;
      else counts.notNearTie += 1;
      const smallest = Math.min(...row.top2_gaps.slice(0, parted + 1));
      console.log(
        `${loop} prompt ${index}: identical for ${parted}/${row.output_ids.length} tokens, then parts where PyTorch's ` +
          `top-2 gap is ${gap.toFixed(4)} (${gap <= nearTie ? 'a near-tie' : 'NOT a near-tie'}; smallest gap up to ` +
          `there ${smallest.toFixed(4)})`,
      );
    }
    summary[loop] = counts;
  }
  console.log(JSON.stringify({ model: folder, nearTieGap: nearTie, ...summary }));
  await releaseAllSessions();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
