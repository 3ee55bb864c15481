"""Synthetic extractive QA from the corpus: cloze questions whose answer is a span of the context.

Real questions are few (240); cloze rows teach the model to find the matching sentence in the
context and copy the missing words, a skill that carries over to questions it has not seen.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from trainer.data import read_jsonl
from trainer.rag_prompt import rag_messages


def cloze_chat_rows(corpus_path: str | Path, per_document: int, seed: int = 0) -> list[dict[str, Any]]:
    generator = random.Random(seed)
    rows = []
    for document in read_jsonl(corpus_path):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", document["text"]) if len(s.split()) >= 6]
        for _ in range(per_document if sentences else 0):
            words = generator.choice(sentences).rstrip(".!?").split()
            length = generator.randint(1, min(4, len(words) - 3))
            start = generator.randint(1, len(words) - length)
            answer = " ".join(words[start : start + length]).strip(",;:()")
            if not answer:
                continue
            question = " ".join(words[:start] + ["what"] + words[start + length :]).rstrip(",;:") + "?"
            rows.append({"messages": rag_messages(question, [document["text"]], answer)})
    return rows


# A generic fill-in-the-blank instruction, deliberately not the RAG question prompt: it teaches the
# model to read a text in a chat turn and reply with a short span copied from it.
CLOZE_SYSTEM_PROMPT = "Fill in the blank with words from the text. Reply with the missing words only."


def fill_blank_chat_rows(corpus_path: str | Path, per_document: int, seed: int = 0) -> list[dict[str, Any]]:
    """Fill-in-the-blank chats from corpus sentences (no QA rows): user = text + a sentence of it
    with a span replaced by "___", assistant = the span."""
    generator = random.Random(seed)
    rows = []
    for document in read_jsonl(corpus_path):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", document["text"]) if len(s.split()) >= 6]
        for _ in range(per_document if sentences else 0):
            words = generator.choice(sentences).split()
            length = generator.randint(1, min(4, len(words) - 3))
            start = generator.randint(0, len(words) - length)
            answer = " ".join(words[start : start + length]).strip(",;:().")
            if not answer:
                continue
            blanked = " ".join(words[:start] + ["___"] + words[start + length :])
            rows.append(
                {
                    "messages": [
                        {"role": "system", "content": CLOZE_SYSTEM_PROMPT},
                        {"role": "user", "content": "Text:\n" + document["text"] + "\n\nSentence: " + blanked},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
    return rows
