import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { CorruptModelError, EmptyPromptError, ModelFileNotFoundError } from './errors';
import { readJsonFile } from './tokenizer/tokenizer';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

interface TokenizerConfigJson {
  chat_template?: string | Array<{ name: string; template: string }>;
  [field: string]: unknown;
}

const specialTokenFields = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/**
 * The model's Jinja chat template, rendered with the variables transformers' `apply_chat_template` passes
 * (messages, add_generation_prompt, the special-token strings), so prompts match the training format exactly.
 */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    private readonly specialTokens: Record<string, string>,
  ) {
    this.template = new Template(source);
  }

  /** Reads chat_template.jinja if present (transformers >= 4.43 saves it there), else tokenizer_config.json's. */
  static fromFolder(folder: string): ChatTemplate {
    const configPath = path.join(folder, 'tokenizer_config.json');
    const config = readJsonFile<TokenizerConfigJson>(configPath, 'Tokenizer settings file tokenizer_config.json');
    const specialTokens: Record<string, string> = {};
    for (const field of specialTokenFields) {
      const content = tokenContent(config[field]);
      if (content !== undefined) specialTokens[field] = content;
    }
    const jinjaPath = path.join(folder, 'chat_template.jinja');
    let source: string | undefined;
    if (existsSync(jinjaPath)) source = readFileSync(jinjaPath, 'utf8');
    else if (typeof config.chat_template === 'string') source = config.chat_template;
    else if (Array.isArray(config.chat_template)) {
      source = config.chat_template.find((entry) => entry.name === 'default')?.template;
    }
    if (source === undefined) {
      throw new ModelFileNotFoundError(configPath, 'A chat template (tokenizer_config.json "chat_template")');
    }
    try {
      return new ChatTemplate(source, specialTokens);
    } catch (error) {
      throw new CorruptModelError(configPath, `its chat template does not parse (${(error as Error).message})`);
    }
  }

  /** The prompt string; with addGenerationPrompt (default true) it ends where the assistant's reply begins. */
  render(
    messages: readonly ChatMessage[],
    options: { addGenerationPrompt?: boolean; requestIndex?: number } = {},
  ): string {
    if (messages.length === 0) throw new EmptyPromptError(options.requestIndex ?? 0);
    return this.template.render({
      ...this.specialTokens,
      messages: messages.map((message) => ({ ...message })),
      add_generation_prompt: options.addGenerationPrompt ?? true,
    });
  }
}
