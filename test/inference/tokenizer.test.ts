import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../lib/config/config';
import { ChatTemplate, Tokenizer, UnsupportedTokenizerError } from '../../lib/inference';
import {
  type Reference,
  chatModelDirectory,
  embeddingModelDirectory,
  pythonPath,
  requireBuiltModels,
} from './built-models';

/** Every text field of the demo data: documents, titles, questions and answers. */
function demoTexts(): string[] {
  const texts: string[] = [];
  for (const file of ['corpus.jsonl', 'qa-train.jsonl', 'qa-eval.jsonl']) {
    for (const line of readFileSync(path.join(projectRoot, 'data', 'climate', file), 'utf8').split('\n')) {
      if (line.trim().length === 0) continue;
      for (const value of Object.values(JSON.parse(line) as Record<string, unknown>)) {
        if (typeof value === 'string' && value.length > 0) texts.push(value);
      }
    }
  }
  return texts;
}

/** Ids from the Hugging Face tokenizers library, computed now with the project's Python environment. */
function huggingFaceIds(tokenizerDirectory: string, texts: string[], addSpecialTokens: boolean): number[][] {
  const script = path.join(__dirname, 'fixtures', 'encode_with_huggingface.py');
  const run = spawnSync(pythonPath, [script], {
    input: JSON.stringify({ tokenizer: tokenizerDirectory, texts, add_special_tokens: addSpecialTokens }),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.status !== 0) {
    throw new Error(`${pythonPath} could not run the reference tokenizer (run bash scripts/setup.sh): ${run.stderr}`);
  }
  return (JSON.parse(run.stdout) as { ids: number[][] }).ids;
}

describe('tokenizer parity with transformers', () => {
  let reference: Reference;
  let chatTokenizer: Tokenizer;
  let embeddingTokenizer: Tokenizer;

  beforeAll(() => {
    reference = requireBuiltModels();
    chatTokenizer = Tokenizer.fromFolder(chatModelDirectory);
    embeddingTokenizer = Tokenizer.fromFolder(embeddingModelDirectory);
  });

  it('byte-level BPE gives the reference ids for corpus sentences and edge cases', () => {
    for (const { text, ids } of reference.tokenization) {
      expect({ text, ids: chatTokenizer.encode(text, { addSpecialTokens: false }) }).toEqual({ text, ids });
    }
  });

  it('decoding the reference ids gives back the text', () => {
    for (const { text, ids } of reference.tokenization) expect(chatTokenizer.decode(ids)).toBe(text);
  });

  it('the chat template renders the same prompt string and ids as apply_chat_template', () => {
    const template = ChatTemplate.fromFolder(chatModelDirectory);
    for (const prompt of reference.chat_prompts) {
      const rendered = template.render(prompt.messages);
      expect(rendered).toBe(prompt.text);
      expect(chatTokenizer.encode(rendered, { addSpecialTokens: false })).toEqual(prompt.ids);
    }
  });

  it('WordPiece gives the reference [CLS] … [SEP] ids, truncated at 256 tokens', () => {
    for (const { text, input_ids } of reference.embeddings) {
      expect(embeddingTokenizer.encode(text, { maxLength: 256 })).toEqual(input_ids);
    }
  });

  it('both tokenizers match Hugging Face on every text of the demo corpus and QA sets', () => {
    const texts = demoTexts();
    expect(texts.length).toBeGreaterThan(300);
    const chatReference = huggingFaceIds(chatModelDirectory, texts, false);
    const embeddingReference = huggingFaceIds(embeddingModelDirectory, texts, true);
    const chatMismatches = texts.filter(
      (text, index) =>
        JSON.stringify(chatTokenizer.encode(text, { addSpecialTokens: false })) !==
        JSON.stringify(chatReference[index]),
    );
    const embeddingMismatches = texts.filter(
      (text, index) =>
        JSON.stringify(embeddingTokenizer.encode(text, { maxLength: 100_000 })) !==
        JSON.stringify(embeddingReference[index]),
    );
    expect(chatMismatches).toEqual([]);
    expect(embeddingMismatches).toEqual([]);
  });

  it('special tokens split out of the text and are skipped on request when decoding', () => {
    const ids = chatTokenizer.encode('<|im_start|>user\nhi<|im_end|>', { addSpecialTokens: false });
    const start = chatTokenizer.tokenToId('<|im_start|>') as number;
    const end = chatTokenizer.tokenToId('<|im_end|>') as number;
    expect(ids[0]).toBe(start);
    expect(ids.at(-1)).toBe(end);
    expect(chatTokenizer.decode(ids)).toBe('<|im_start|>user\nhi<|im_end|>');
    expect(chatTokenizer.decode(ids, { skipSpecialTokens: true })).toBe('user\nhi');
  });
});

describe('tokenizer.json support', () => {
  it('tokenizers in the styles of Llama 2, Llama 3, GPT-2, Metaspace and BERT variants match Hugging Face', () => {
    const texts = [
      ...demoTexts(),
      "Hello  WORLD's I'LL don't\n\n  12345 x=y+1;\r\n\tEnd!!  ",
      'CO₂ rose — 日本語 😀 Ünïcödé',
      '   ',
      '<|sep|>a<|sep|> b',
      'Café <s> naïve </s>',
    ];
    const folder = mkdtempSync(path.join(os.tmpdir(), 'weft-tokenizer-styles-'));
    try {
      const script = path.join(__dirname, 'fixtures', 'train_tokenizers.py');
      const run = spawnSync(pythonPath, [script, folder], {
        input: JSON.stringify({ texts }),
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
      });
      if (run.status !== 0) {
        throw new Error(
          `${pythonPath} could not train the reference tokenizers (run bash scripts/setup.sh): ${run.stderr}`,
        );
      }
      const reference = JSON.parse(run.stdout) as Record<string, { ids: number[][]; decoded: string[] }>;
      expect(Object.keys(reference)).toEqual(['sentencepiece', 'metaspace', 'llama3', 'roberta', 'wordpiece']);
      for (const [style, expected] of Object.entries(reference)) {
        const tokenizer = Tokenizer.fromFolder(path.join(folder, style));
        const encodingMismatches = texts.filter(
          (text, index) => JSON.stringify(tokenizer.encode(text)) !== JSON.stringify(expected.ids[index]),
        );
        const decodingMismatches = texts.filter(
          (_, index) => tokenizer.decode(expected.ids[index]) !== expected.decoded[index],
        );
        expect({ style, encodingMismatches, decodingMismatches }).toEqual({
          style,
          encodingMismatches: [],
          decodingMismatches: [],
        });
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('rejects a model type it does not implement, naming the supported ones', () => {
    expect(() => new Tokenizer({ model: { type: 'Unigram', vocab: [] } })).toThrow(UnsupportedTokenizerError);
    expect(() => new Tokenizer({ model: { type: 'Unigram', vocab: [] } })).toThrow(
      'Unsupported tokenizer model type "Unigram"; weft supports BPE, WordPiece',
    );
  });

  it('applies the BERT normaliser: lowercase, accents stripped, CJK characters as words, punctuation split', () => {
    const vocabulary = ['[UNK]', '[CLS]', '[SEP]', 'cafe', 'naive', '!', '日', '本', 'un', '##believ', '##able'];
    const tokenizer = new Tokenizer({
      normalizer: {
        type: 'BertNormalizer',
        clean_text: true,
        handle_chinese_chars: true,
        strip_accents: null,
        lowercase: true,
      },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      model: {
        type: 'WordPiece',
        unk_token: '[UNK]',
        continuing_subword_prefix: '##',
        vocab: Object.fromEntries(vocabulary.map((token, id) => [token, id])),
      },
      post_processor: { type: 'BertProcessing', cls: ['[CLS]', 1], sep: ['[SEP]', 2] },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    });
    const ids = tokenizer.encode('Café NAÏVE! 日本 Unbelievable zzz');
    expect(ids.map((id) => tokenizer.idToToken(id))).toEqual([
      '[CLS]',
      'cafe',
      'naive',
      '!',
      '日',
      '本',
      'un',
      '##believ',
      '##able',
      '[UNK]',
      '[SEP]',
    ]);
    expect(tokenizer.encode('Café NAÏVE! 日本', { maxLength: 4 })).toEqual([1, 3, 4, 2]);
  });
});
