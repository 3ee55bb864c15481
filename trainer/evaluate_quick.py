"""Quick QA accuracy of chat models: greedy PyTorch generation with the gold document as context.

    python -m trainer.evaluate_quick --model <hf dir> [--model <hf dir> ...] [--qa data/climate/qa-eval.jsonl]

Prints one JSON line per model: exact_match, token_f1 (SQuAD-style normalisation) and
answer_contained (the gold answer appears in the prediction), all in [0, 1]. With two or more
models, also one "comparison" line per later model against the first: the mean per-row difference
of exact match and token F1 and its paired bootstrap 95 % interval (rows resampled with
replacement, 10,000 resamples, fixed seed).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import time
from pathlib import Path

import torch

from trainer import paths
from trainer.chat_tokens import chat_prompt_ids
from trainer.data import corpus_by_id, read_jsonl
from trainer.rag_prompt import rag_messages


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(character for character in text if character not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(predicted) & collections.Counter(expected)
    overlap = sum(common.values())
    if not predicted or not expected:
        return float(predicted == expected)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def generate_answers(model_dir: Path, prompts: list[list[dict[str, str]]], max_new_tokens: int, batch_size: int) -> list[str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    return answers_from_model(model, tokenizer, prompts, max_new_tokens, batch_size)


def answers_from_model(model, tokenizer, prompts: list[list[dict[str, str]]], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy answers of a loaded model (left-padded batches, stopping at the model's end-of-turn token)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers = []
    for start in range(0, len(prompts), batch_size):
        encoded = [chat_prompt_ids(tokenizer, messages) for messages in prompts[start : start + batch_size]]
        width = max(len(ids) for ids in encoded)
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in encoded])
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
        with torch.no_grad():
            output = model.generate(
                input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id
            )
        answers.extend(tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output)
    return answers


def evaluate(model_dir: Path, qa_path: Path, corpus_path: Path, limit: int | None, max_new_tokens: int, batch_size: int) -> dict:
    documents = corpus_by_id(corpus_path)
    rows = read_jsonl(qa_path)[:limit]
    prompts = [rag_messages(row["question"], [documents[row["doc_id"]]["text"]]) for row in rows]
    started = time.time()
    answers = generate_answers(model_dir, prompts, max_new_tokens, batch_size)
    exact = [float(normalize_answer(a) == normalize_answer(r["answer"])) for a, r in zip(answers, rows)]
    f1 = [token_f1(a, r["answer"]) for a, r in zip(answers, rows)]
    contained = [float(normalize_answer(r["answer"]) in normalize_answer(a)) for a, r in zip(answers, rows)]
    return {
        "event": "evaluation",
        "model": str(model_dir),
        "rows": len(rows),
        "exact_match": round(sum(exact) / len(rows), 4),
        "token_f1": round(sum(f1) / len(rows), 4),
        "answer_contained": round(sum(contained) / len(rows), 4),
        "seconds": round(time.time() - started, 1),
        "per_row": {"exact_match": exact, "token_f1": f1},
        "examples": [{"question": r["question"], "gold": r["answer"], "predicted": a} for r, a in list(zip(rows, answers))[:3]],
    }


def paired_bootstrap(baseline: list[float], candidate: list[float], resamples: int = 10_000, seed: int = 0) -> dict:
    """Mean of candidate - baseline over rows, with a percentile bootstrap 95 % interval (paired rows)."""
    import numpy as np

    differences = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    generator = np.random.default_rng(seed)
    indices = generator.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[indices].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean_difference": round(float(differences.mean()), 4), "ci95": [round(float(low), 4), round(float(high), 4)]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True, help="HF model folder (repeatable)")
    parser.add_argument("--qa", type=Path, default=paths.DEMO_DATA_DIR / "qa-eval.jsonl")
    parser.add_argument("--corpus", type=Path, default=paths.DEMO_DATA_DIR / "corpus.jsonl")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    results = []
    for model_dir in args.model:
        result = evaluate(model_dir, args.qa, args.corpus, args.limit, args.max_new_tokens, args.batch_size)
        results.append(result)
        printed = {key: value for key, value in result.items() if key != "per_row"}
        print(json.dumps(printed, ensure_ascii=False), flush=True)
    for result in results[1:]:
        baseline = results[0]
        comparison = {"event": "comparison", "baseline": baseline["model"], "model": result["model"], "rows": result["rows"]}
        for metric in ("exact_match", "token_f1"):
            comparison[metric] = paired_bootstrap(baseline["per_row"][metric], result["per_row"][metric])
        print(json.dumps(comparison), flush=True)


if __name__ == "__main__":
    main()
