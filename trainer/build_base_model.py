"""Build the tiny chat model: a Llama-architecture base model pretrained briefly on CPU.

The fast tests' model (unit, integration and pipeline tests fine-tune and serve it in seconds) and the demo's
base when WEFT_DEMO_BASE_MODEL=base-chat; the demo's default base is SmolLM2 (trainer/build_smollm2.py). No test
depends on how well it answers, so setup trains it for 120 steps (320 before SmolLM2: a third of setup's time).

It is a tiny base model built by setup (about 4M parameters, a few minutes of training), not a
pretrained LLM. It is trained only on text derived from the demo corpus: the 80 documents as plain
language-model text, and generic fill-in-the-blank chats made from corpus sentences
(trainer/synthetic_qa.py: fill_blank_chat_rows; its own system prompt, not the RAG prompt). It sees
no question of qa-train or qa-eval, so it answers RAG prompts poorly and LoRA fine-tuning on
qa-train (trainer.finetune) has a skill to teach that shows on the held-back qa-eval split.

    python -m trainer.build_base_model [--out DIR] [--steps N] [--device auto]

The folder gets weft-recipe.txt (RECIPE_VERSION, then the arguments as JSON); setup-python.sh
rebuilds base-chat and reference.json when its first line differs from RECIPE_VERSION.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import torch

from trainer import paths
from trainer.build_tokenizer import save_tokenizer_folder
from trainer.chat_tokens import IGNORE_INDEX, length_grouped_batches, pad_batch, tokenize_conversation
from trainer.data import rag_chat_rows, read_jsonl
from trainer.synthetic_qa import cloze_chat_rows, fill_blank_chat_rows
from trainer.device import resolve_device
from trainer.weight_files import shard_hf_folder

SEED = 1234
MAX_LENGTH = 512
# Bump when the default recipe (data, steps, architecture, hyper-parameters) changes: setup-python.sh
# compares it with the first line of <hf dir>/weft-recipe.txt and rebuilds base-chat when they differ.
RECIPE_VERSION = "weft-base-chat/3 corpus+fill-blank-30 120-steps"
RECIPE_FILE = "weft-recipe.txt"


def tiny_llama_config(tokenizer, **overrides):
    from transformers import LlamaConfig

    values = dict(
        vocab_size=len(tokenizer),
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=688,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    values.update(overrides)
    return LlamaConfig(**values)


def generation_config_for(tokenizer):
    from transformers import GenerationConfig

    # A chat turn ends at <|im_end|>; <|eos|> ends a plain document.
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=64,
    )


def pretraining_examples(
    tokenizer, corpus_path: Path, qa_path: Path | None, cloze_per_document: int = 0, fill_blank_per_document: int = 0
) -> list[tuple[list[int], list[int]]]:
    examples = []
    for document in read_jsonl(corpus_path):
        ids = (
            [tokenizer.bos_token_id]
            + tokenizer.encode(document["title"] + "\n" + document["text"], add_special_tokens=False)
            + [tokenizer.eos_token_id]
        )
        examples.append((ids, list(ids)))
    chat_rows = (rag_chat_rows(qa_path, corpus_path) if qa_path is not None else []) + cloze_chat_rows(
        corpus_path, cloze_per_document, SEED
    )
    chat_rows += fill_blank_chat_rows(corpus_path, fill_blank_per_document, SEED)
    for row in chat_rows:
        ids, assistant_labels = tokenize_conversation(tokenizer, row["messages"])
        # Language-model loss on the whole conversation, so the model also learns the format.
        labels = [token if label == IGNORE_INDEX else label for token, label in zip(ids, assistant_labels)]
        examples.append((ids, labels))
    return examples


def pretrain(model, examples, steps: int, batch_size: int, learning_rate: float, device: torch.device, log) -> float:
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, steps // 20)

    def learning_rate_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor)
    lengths = [len(ids) for ids, _ in examples]
    batches: list[list[int]] = []
    model.train()
    recent_losses: list[float] = []
    started = time.time()
    tokens = 0
    for step in range(steps):
        if not batches:
            batches = length_grouped_batches(lengths, batch_size, generator)
        batch = pad_batch([examples[i] for i in batches.pop()], model.config.pad_token_id, MAX_LENGTH)
        batch = {key: value.to(device) for key, value in batch.items()}
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
        recent_losses = (recent_losses + [loss.item()])[-20:]
        if (step + 1) % 25 == 0 or step + 1 == steps:
            elapsed = time.time() - started
            log(
                {
                    "event": "progress",
                    "step": step + 1,
                    "total_steps": steps,
                    "loss": round(sum(recent_losses) / len(recent_losses), 4),
                    "learning_rate": scheduler.get_last_lr()[0],
                    "tokens_per_second": round(tokens / elapsed, 1),
                }
            )
    model.eval()
    return sum(recent_losses) / len(recent_losses)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="HF folder; default $WEFT_MODELS_DIR/base-chat/hf")
    parser.add_argument("--onnx-out", type=Path, default=None, help="default $WEFT_MODELS_DIR/base-chat/onnx")
    parser.add_argument("--tokenizer", type=Path, default=None, help="default $WEFT_MODELS_DIR/tokenizer (built if absent)")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu: reproducible demo build)")
    parser.add_argument("--corpus", type=Path, default=paths.DEMO_DATA_DIR / "corpus.jsonl")
    parser.add_argument(
        "--qa", type=Path, default=paths.DEMO_DATA_DIR / "qa-train.jsonl",
        help="QA rows: tokenizer training text when the tokenizer must be built; training chats only with --qa-chats",
    )
    parser.add_argument(
        "--qa-chats", action="store_true",
        help="also train on RAG chats built from --qa (the old recipe: the base is then already tuned on the fine-tuning data)",
    )
    parser.add_argument("--fill-blank-per-document", type=int, default=30, help="fill-in-the-blank chats per document")
    parser.add_argument("--cloze-per-document", type=int, default=0, help="synthetic cloze chats in the RAG prompt per document")
    parser.add_argument("--skip-onnx", action="store_true")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer, LlamaForCausalLM

    def log(event: dict) -> None:
        print(json.dumps(event), flush=True)

    tokenizer_dir = args.tokenizer or paths.tokenizer_dir()
    if not (tokenizer_dir / "tokenizer.json").exists():
        from trainer import build_tokenizer

        build_tokenizer.main(["--out", str(tokenizer_dir), "--corpus", str(args.corpus), "--qa", str(args.qa)])
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))

    torch.manual_seed(SEED)
    device = resolve_device(args.device)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer)).to(device)
    model.generation_config = generation_config_for(tokenizer)
    examples = pretraining_examples(
        tokenizer, args.corpus, args.qa if args.qa_chats else None, args.cloze_per_document, args.fill_blank_per_document
    )
    started = time.time()
    final_loss = pretrain(model, examples, args.steps, args.batch_size, args.learning_rate, device, log)
    train_seconds = time.time() - started

    out_dir = args.out or paths.base_chat_hf_dir()
    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.to("cpu").save_pretrained(str(staging), safe_serialization=True)
    shard_hf_folder(staging)
    save_tokenizer_folder(tokenizer, staging)
    recipe = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    for key in ("out", "onnx_out", "tokenizer", "device", "skip_onnx"):
        recipe.pop(key, None)
    (staging / RECIPE_FILE).write_text(RECIPE_VERSION + "\n" + json.dumps(recipe, sort_keys=True) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)

    summary = {"event": "done", "hf_dir": str(out_dir), "final_loss": round(final_loss, 4), "train_seconds": round(train_seconds, 1)}
    if not args.skip_onnx:
        from trainer.export_onnx import export_causal_lm

        onnx_dir = args.onnx_out or paths.base_chat_onnx_dir()
        summary["export_check"] = export_causal_lm(out_dir, onnx_dir)["export_check"]
        summary["onnx_dir"] = str(onnx_dir)
    log(summary)


if __name__ == "__main__":
    main()
