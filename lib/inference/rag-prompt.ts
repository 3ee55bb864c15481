import type { ChatMessage } from './chat-template';

/**
 * The one RAG prompt format, identical to trainer/rag_prompt.py (fine-tuning data is built with it): change both
 * together, or fine-tuned models see prompts unlike their training data.
 */
export const ragSystemPrompt = 'Answer the question using only the context. Reply with a short answer.';

const chunkSeparator = '\n\n';

/** The system and user messages of one RAG turn for a question and its retrieved passages. */
export function ragMessages(question: string, chunks: readonly string[]): ChatMessage[] {
  return [
    { role: 'system', content: ragSystemPrompt },
    { role: 'user', content: 'Context:\n' + chunks.join(chunkSeparator) + '\n\nQuestion: ' + question },
  ];
}
