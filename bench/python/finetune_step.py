"""One LoRA training step on SmolLM2 with the demo-cpu recipe, two ways in the same process: the model's own loss
(LM head on every position) against trainer.finetune.causal_lm_loss (LM head on the answer positions only).

    .venv/bin/python bench/python/finetune_step.py [--steps 4] [--base .weft/models/smollm2/hf] [--threads 2]

Batches are the demo's training rows (8 a step, the demo-cpu batch), alternated between the two ways so load
changes on a shared machine hit both; prints seconds per step for each, the ratio, and the loss difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from trainer.chat_tokens import pad_batch, tokenize_conversation  # noqa: E402
from trainer.data import rag_chat_rows  # noqa: E402
from trainer.finetune import CONFIGS, LORA_TARGET_MODULES, _top_layers, causal_lm_loss  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--base", type=Path, default=ROOT / ".weft" / "models" / "smollm2" / "hf")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = CONFIGS["demo-cpu"]
    tokenizer = AutoTokenizer.from_pretrained(str(args.base))
    model = AutoModelForCausalLM.from_pretrained(str(args.base), dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            task_type="CAUSAL_LM", r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
            target_modules=LORA_TARGET_MODULES, layers_to_transform=_top_layers(model, config.lora_top_layers),
        ),
    )
    model.train()
    rows = rag_chat_rows(ROOT / "data/climate/qa-train.jsonl", ROOT / "data/climate/corpus.jsonl")
    examples = [tokenize_conversation(tokenizer, row["messages"]) for row in rows]
    batches = [
        pad_batch(examples[start : start + config.batch_size], tokenizer.pad_token_id, config.max_length)
        for start in range(0, config.batch_size * args.steps, config.batch_size)
    ]
    full, answer_only = "every position", "answer positions"
    ways = {full: lambda batch: model(**batch).loss, answer_only: lambda batch: causal_lm_loss(model, batch)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    differences = []
    for batch in [batches[0]] + batches:  # the first batch warms up both ways and is not counted
        losses = {}
        for name, compute in ways.items():
            started = time.perf_counter()
            loss = compute(batch)
            loss.backward()
            model.zero_grad(set_to_none=True)
            times[name].append(time.perf_counter() - started)
            losses[name] = loss.item()
        differences.append(abs(losses[full] - losses[answer_only]))
    tokens = sum(int(batch["attention_mask"].sum()) for batch in batches) / len(batches)
    scored = sum(int((batch["labels"] != -100).sum()) for batch in batches) / len(batches)
    print(f"{len(batches)} steps of {config.batch_size} rows, ~{tokens:.0f} tokens a step, ~{scored:.0f} of them scored")
    medians = {name: statistics.median(values[1:]) for name, values in times.items()}
    for name, value in medians.items():
        print(f"LM head on {name:>16}: {value:.2f} s/step (median)")
    print(f"speed-up: {medians[full] / medians[answer_only]:.2f}x; "
          f"largest loss difference {max(differences):.2e}")


if __name__ == "__main__":
    main()
