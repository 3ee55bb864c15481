"""The one RAG prompt format. lib/inference's RagModel formats identically; change both together.

A RAG turn is two messages, rendered with the tokenizer's ChatML chat template:

    system:    SYSTEM_PROMPT
    user:      "Context:\n" + "\n\n".join(chunks) + "\n\nQuestion: " + question

and the answer is the assistant turn.
"""

from __future__ import annotations

SYSTEM_PROMPT = "Answer the question using only the context. Reply with a short answer."

CHUNK_SEPARATOR = "\n\n"


def user_message(question: str, chunks: list[str]) -> str:
    return "Context:\n" + CHUNK_SEPARATOR.join(chunks) + "\n\nQuestion: " + question


def rag_messages(question: str, chunks: list[str], answer: str | None = None) -> list[dict[str, str]]:
    """Messages for one RAG turn; with `answer`, a complete training conversation."""
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(question, chunks)},
    ]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages
