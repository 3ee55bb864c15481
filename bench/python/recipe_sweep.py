"""Which `demo-cpu` recipe teaches SmolLM2 the RAG answer format best, chosen without looking at qa-eval.

    .venv/bin/python bench/python/recipe_sweep.py --base .weft/models/smollm2/hf \
        [--config lr=2e-3,rank=16,alpha=32,top=10 --config lr=1e-3 ...] [--threads 2] [--dev-every 6]

qa-train is split: every `--dev-every`-th row is a dev row, the rest train. Each `--config` (overrides of the
`demo-cpu` recipe; keys lr, rank, alpha, top, steps, dropout, warmup) is trained on the train rows exactly as
trainer/finetune.py trains (same tokenisation, batches, loss, schedule; the optimizer step count scales with the
rows: one pass), then the adapted model answers the dev rows greedily (up to 24 new tokens, as the demo app) with
the passage the demo trains on as context (the first 120-word passage of the gold document that holds the answer).
Prints one JSON line per config: dev token F1, exact match, train seconds. The first config is the baseline;
each later line also has the paired F1 difference against it with a bootstrap 95 % interval.

qa-eval is never read: pick a recipe here, then measure it once on qa-eval with `bin/weft demo`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from trainer.chat_tokens import IGNORE_INDEX, pad_batch, tokenize_conversation  # noqa: E402
from trainer.data import corpus_by_id, read_jsonl  # noqa: E402
from trainer.evaluate_quick import answers_from_model, normalize_answer, paired_bootstrap, token_f1  # noqa: E402
from trainer.finetune import (  # noqa: E402
    CONFIGS,
    LORA_TARGET_MODULES,
    _has_module,
    _top_layers,
    causal_lm_loss,
    epoch_batches,
    learning_rate_factor,
)
from trainer.rag_prompt import rag_messages  # noqa: E402

KEYS = {"lr": "learning_rate", "rank": "lora_rank", "alpha": "lora_alpha", "top": "lora_top_layers",
        "steps": "max_steps", "dropout": "lora_dropout", "warmup": "warmup_steps", "epochs": "epochs"}


def answer_passage(text: str, answer: str, chunk_words: int = 120, overlap_words: int = 30) -> str:
    """lib/rag/corpus.ts chunkDocument, then lib/rag/demo-project.ts answerPassage."""
    words = text.split()
    passages, start = [], 0
    while True:
        end = min(len(words), start + chunk_words)
        if len(words) - end < overlap_words:
            end = len(words)
        passages.append(" ".join(words[start:end]))
        if end >= len(words):
            break
        start += chunk_words - overlap_words
    return next((p for p in passages if answer.lower() in p.lower()), passages[0])


def parse_config(text: str):
    config = CONFIGS["demo-cpu"]
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in KEYS:
            raise SystemExit(f"--config key {key!r} is not one of {', '.join(KEYS)}")
        field = KEYS[key]
        config = replace(config, **{field: float(value) if field in ("learning_rate", "lora_alpha", "lora_dropout", "epochs") else int(value)})
    return config


def train(base: Path, conversations, config, tokenizer):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples = []
    for conversation in conversations:
        ids, labels = tokenize_conversation(tokenizer, conversation)
        if any(label != IGNORE_INDEX for label in labels[: config.max_length]):
            examples.append((ids[: config.max_length], labels[: config.max_length]))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(
        task_type="CAUSAL_LM", r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=[name for name in LORA_TARGET_MODULES if _has_module(model, name)],
        layers_to_transform=_top_layers(model, config.lora_top_layers),
    ))
    model.train()
    per_epoch = math.ceil(len(examples) / config.batch_size)
    total = config.max_steps or max(1, math.ceil(config.epochs * per_epoch))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(s, config.warmup_steps, total))
    lengths = [len(ids) for ids, _ in examples]
    started, step, epoch, batches = time.time(), 0, 0, []
    while step < total:
        if not batches:
            batches = epoch_batches(lengths, config.batch_size, config.seed, epoch)
            epoch += 1
        batch = pad_batch([examples[i] for i in batches.pop(0)], pad, config.max_length)
        loss = causal_lm_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
    model.eval()
    return model, total, time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=ROOT / ".weft/models/smollm2/hf")
    parser.add_argument("--data", type=Path, default=ROOT / "data/climate")
    parser.add_argument("--config", action="append", default=None, help="comma-separated overrides, e.g. lr=1e-3,top=12")
    parser.add_argument("--dev-every", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(args.base))
    documents = corpus_by_id(args.data / "corpus.jsonl")
    rows = read_jsonl(args.data / "qa-train.jsonl")
    dev = [r for i, r in enumerate(rows) if i % args.dev_every == args.dev_every - 1]
    train_rows = [r for i, r in enumerate(rows) if i % args.dev_every != args.dev_every - 1]

    def messages(row, with_answer):
        context = answer_passage(documents[row["doc_id"]]["text"], row["answer"])
        return rag_messages(row["question"], [context], row["answer"] if with_answer else None)

    conversations = [messages(r, True) for r in train_rows]
    prompts = [messages(r, False) for r in dev]
    baseline = None
    for text in args.config or [""]:
        config = parse_config(text)
        model, steps, seconds = train(args.base, conversations, config, tokenizer)
        with torch.no_grad():
            predictions = answers_from_model(model, tokenizer, prompts, max_new_tokens=24, batch_size=8)
        f1 = [token_f1(p, r["answer"]) for p, r in zip(predictions, dev)]
        em = [float(normalize_answer(p) == normalize_answer(r["answer"])) for p, r in zip(predictions, dev)]
        line = {"config": text or "demo-cpu", "steps": steps, "train_seconds": round(seconds, 1), "train_rows": len(train_rows),
                "dev_rows": len(dev), "dev_f1": round(float(np.mean(f1)), 4), "dev_exact_match": round(float(np.mean(em)), 4)}
        if baseline is None:
            baseline = f1
        else:
            lift = paired_bootstrap(baseline, f1)
            line["f1_vs_first"] = {"mean": lift["mean_difference"], "ci95": lift["ci95"]}
        print(json.dumps(line), flush=True)
        del model


if __name__ == "__main__":
    main()
