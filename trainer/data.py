"""Reading the demo corpus and QA sets (JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.rag_prompt import rag_messages


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def corpus_by_id(corpus_path: str | Path) -> dict[str, dict[str, Any]]:
    return {document["id"]: document for document in read_jsonl(corpus_path)}


def rag_chat_rows(qa_path: str | Path, corpus_path: str | Path) -> list[dict[str, Any]]:
    """Training conversations: the gold document is the retrieved context."""
    documents = corpus_by_id(corpus_path)
    return [
        {"messages": rag_messages(row["question"], [documents[row["doc_id"]]["text"]], row["answer"])}
        for row in read_jsonl(qa_path)
    ]
