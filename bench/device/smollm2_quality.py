"""What LoRA fine-tuning does to SmolLM2-135M-Instruct on the demo's QA task, measured with PyTorch only.

    PYTHONPATH=. python3 bench/device/smollm2_quality.py --base <SmolLM2 hf dir> --work <dir> [--config gpu]

Model-level, not the app: training rows are built as `weft demo` builds them (qa-train, context = the 120-word
passage of the gold document that holds the answer, lib/rag/demo-project.ts answerPassage), each recipe of
trainer/finetune.py trains on them, and trainer/evaluate_quick.py scores the base and every fine-tuned model on
qa-eval with the gold document as context (exact match, token F1, paired bootstrap of the difference). qa-eval is
never trained on. Used on the H200 through the device tool (the 2-core machine cannot train SmolLM2 in a session).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from trainer import paths
from trainer.data import read_jsonl
from trainer.rag_prompt import rag_messages

CHUNK_WORDS = 120  # lib/rag/corpus.ts defaultChunking
OVERLAP_WORDS = 30


def passages(text: str) -> list[str]:
    words = text.split()
    stride = CHUNK_WORDS - OVERLAP_WORDS
    out, start = [], 0
    while True:
        end = min(len(words), start + CHUNK_WORDS)
        if len(words) - end < OVERLAP_WORDS:
            end = len(words)
        out.append(" ".join(words[start:end]))
        if end >= len(words):
            return out
        start += stride


def answer_passage(text: str, answer: str) -> str:
    candidates = passages(text)
    return next((passage for passage in candidates if answer.lower() in passage.lower()), candidates[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--config", action="append", default=None, help="trainer.finetune recipes (default both)")
    args = parser.parse_args()
    configs = args.config or ["demo-cpu", "gpu"]
    args.work.mkdir(parents=True, exist_ok=True)

    documents = {row["id"]: row for row in read_jsonl(paths.DEMO_DATA_DIR / "corpus.jsonl")}
    rows = read_jsonl(paths.DEMO_DATA_DIR / "qa-train.jsonl")
    train = args.work / "train.jsonl"
    with open(train, "w", encoding="utf-8") as handle:
        for row in rows:
            context = answer_passage(documents[row["doc_id"]]["text"], row["answer"])
            handle.write(json.dumps({"messages": rag_messages(row["question"], [context], row["answer"])}) + "\n")
    print(json.dumps({"event": "train_rows", "rows": len(rows)}), flush=True)

    models = [str(args.base)]
    for config in configs:
        out = args.work / f"run-{config}"
        started = time.time()
        done = None
        process = subprocess.Popen(
            [sys.executable, "-m", "trainer.finetune", "--base", str(args.base), "--train", str(train),
             "--out", str(out), "--config", config, "--device", "cuda"],
            stdout=subprocess.PIPE, text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            event = json.loads(line)
            if event.get("event") in ("done", "error"):
                done = event
        process.wait()
        print(json.dumps({"event": "finetune", "config": config, "exit": process.returncode,
                          "wall_seconds": round(time.time() - started, 1), "result": done}), flush=True)
        if process.returncode == 0:
            models.append(str(out / "hf"))

    evaluation = subprocess.run(
        [sys.executable, "-m", "trainer.evaluate_quick", *[arg for model in models for arg in ("--model", model)],
         "--qa", str(paths.DEMO_DATA_DIR / "qa-eval.jsonl")],
        capture_output=True, text=True,
    )
    sys.stdout.write(evaluation.stdout)
    if evaluation.returncode != 0:
        sys.stdout.write(json.dumps({"event": "evaluate_failed", "stderr": evaluation.stderr[-3000:]}) + "\n")


if __name__ == "__main__":
    main()
