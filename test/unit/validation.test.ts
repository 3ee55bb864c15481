import { hyperParameterProblems } from '../../lib/training/hyper-parameters';
import { appNameProblems, lifecycleInputProblems } from '../../activities/validation';
import { storeWithRunInputs } from '../support/run-inputs';

describe('run input validation (finding 3)', () => {
  it('valid inputs have no problems', async () => {
    const { store, input } = await storeWithRunInputs();
    try {
      expect(await lifecycleInputProblems(store, input)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('names every bad input at once: app, refs of the wrong kind or missing, out-of-range hyper-parameters', async () => {
    const { store, input, counts } = await storeWithRunInputs();
    try {
      const before = await counts();
      const problems = await lifecycleInputProblems(store, {
        ...input,
        app: 'a b/c',
        baseModelRef: 'wandb-artifact:///weft/rag-demo/no-such-model:v0',
        // A Dataset where an Evaluation belongs: the right form, the wrong kind.
        evaluationRef: input.trainingDatasetRef,
        ragModelRef: 'weave:///weft/rag-demo/object/RagModel:0000',
        hyperParameters: { max_steps: 1e15, lora_rank: 0, learnin_rate: 0.1 },
      });
      expect(problems).toHaveLength(7);
      expect(problems.join('\n')).toMatch(/--app: .*"a b\/c"/);
      expect(problems.join('\n')).toMatch(/--base-model .*no-such-model/);
      expect(problems.join('\n')).toMatch(/--evaluation .* is a Dataset, not an Evaluation/);
      expect(problems.join('\n')).toMatch(/--rag .*RagModel:0000/);
      expect(problems.join('\n')).toMatch(/max_steps must be a whole number in \[1, 1000000\], got 1000000000000000/);
      expect(problems.join('\n')).toMatch(/lora_rank must be a whole number in \[1, 1024\], got 0/);
      expect(problems.join('\n')).toMatch(/unknown hyper-parameter 'learnin_rate'/);
      // Validation reads only.
      expect(await counts()).toEqual(before);
    } finally {
      await store.close();
    }
  });

  it('documented ranges: open and closed bounds, whole numbers', () => {
    expect(hyperParameterProblems({ learning_rate: 1 })).toHaveLength(1);
    expect(hyperParameterProblems({ learning_rate: 0.999, lora_dropout: 0, max_steps: 1 })).toEqual([]);
    expect(hyperParameterProblems({ max_steps: 2.5 })).toEqual([
      'hyper-parameter max_steps must be a whole number in [1, 1000000], got 2.5',
    ]);
    // The demo-cpu recipe's layer cut can be overridden (a 22-layer 1.1B model trains its top 2 layers on a CPU).
    expect(hyperParameterProblems({ lora_top_layers: 2 })).toEqual([]);
    expect(hyperParameterProblems({ lora_top_layers: 0 })).toEqual([
      'hyper-parameter lora_top_layers must be a whole number in [1, 100000], got 0',
    ]);
    expect(appNameProblems('climate-rag')).toEqual([]);
    expect(appNameProblems('')).toHaveLength(1);
  });
});
