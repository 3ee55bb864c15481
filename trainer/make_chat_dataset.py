"""Build RAG chat training rows (the gold document as context) from a QA set and a corpus.

    python -m trainer.make_chat_dataset --qa data/climate/qa-train.jsonl --corpus data/climate/corpus.jsonl --out x.jsonl

Each output line is {"messages": [system, user, assistant]} in the format of trainer/rag_prompt.py,
which is what `python -m trainer.finetune --train` reads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainer.data import rag_chat_rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qa", type=Path, required=True, help="JSON lines {question, answer, doc_id}")
    parser.add_argument("--corpus", type=Path, required=True, help="JSON lines {id, title, text}")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = rag_chat_rows(args.qa, args.corpus)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(json.dumps({"event": "done", "rows": len(rows), "out": str(args.out)}))


if __name__ == "__main__":
    main()
