"""LoRA fine-tuning of a Hugging Face causal LM on RAG chat rows; merges, saves and exports ONNX.

    python -m trainer.finetune --base <hf dir> --train <chat jsonl> --out <dir> --config demo-cpu|gpu
        [--resume-from <out>/checkpoints/step-<n>] [--epochs E] [--max-steps N] [--learning-rate LR]
        [--batch-size B] [--lora-rank R] [--lora-alpha A] [--lora-dropout D] [--checkpoint-every N]
        [--max-length T] [--seed S] [--device auto|cpu|cuda]

Input rows: {"messages": [{"role", "content"}, ...]} (trainer/rag_prompt.py). The loss covers the
assistant turns only. Stdout is JSON lines, one event each:

    {"event": "progress", "step", "total_steps", "loss", "learning_rate", "tokens_per_second"}
    {"event": "checkpoint", "step", "path"}
    {"event": "done", "final_loss", "export_check", "onnx_dir", "hf_dir", "train_seconds", "tokens_per_second"}
    {"event": "error", "kind": "invalid_input", "message"}     exit code 2 (retrying cannot help)
    {"event": "error", "kind": "export_failed", "message"}     exit code 2 (ONNX check failed after training)
    {"event": "cancelled"}                                      on SIGTERM, exit code 143

Checkpoints (<out>/checkpoints/step-<n>, written to a temporary folder then renamed) hold the
adapter, optimizer, scheduler and RNG state; --resume-from continues at that step with the same
batches a run without interruption would have seen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.build_tokenizer import save_tokenizer_folder
from trainer.chat_tokens import IGNORE_INDEX, length_grouped_batches, pad_batch, tokenize_conversation
from trainer.device import resolve_device
from trainer.weight_files import shard_hf_folder

EXIT_INVALID_INPUT = 2
EXIT_CANCELLED = 143
CHECKPOINT_STATE_FILE = "trainer_state.json"
ROLES = {"system", "user", "assistant"}
LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainingConfig:
    epochs: float
    max_steps: int | None
    learning_rate: float
    batch_size: int
    lora_rank: int
    lora_alpha: float
    lora_dropout: float
    checkpoint_every: int
    max_length: int
    warmup_steps: int
    seed: int
    bf16: bool
    # Adapt only the top N decoder layers (None: all). Backward then stops N layers down, which is most of a CPU
    # step's cost on a 30-layer model such as SmolLM2.
    lora_top_layers: int | None = None


CONFIGS = {
    # SmolLM2-135M-Instruct on 2 CPU cores within the demo's 10 minutes: one pass over the 240 demo rows (30 steps of
    # 8; a row is one ~230-token passage prompt), LoRA on the top 15 of 30 layers so backward stops there. It
    # teaches the answer format (a short span copied from the passage). 15, not 10: on a dev split of qa-train
    # (bench/python/recipe_sweep.py; qa-eval unseen) F1 0.52 -> 0.78, paired CI [+0.11, +0.42], for ~20% more step
    # time; learning rate 1e-3 or 4e-3 and rank 32 moved it by less than the noise.
    "demo-cpu": TrainingConfig(
        epochs=1, max_steps=None, learning_rate=2e-3, batch_size=8, lora_rank=16, lora_alpha=32,
        lora_dropout=0.05, checkpoint_every=10, max_length=384, warmup_steps=3, seed=42, bf16=False,
        lora_top_layers=15,
    ),
    "gpu": TrainingConfig(
        epochs=8, max_steps=None, learning_rate=1e-3, batch_size=32, lora_rank=32, lora_alpha=64,
        lora_dropout=0.05, checkpoint_every=50, max_length=1024, warmup_steps=10, seed=42, bf16=True,
    ),
}
# Hyper-parameters that must not change between a checkpoint and the run that resumes it.
RESUME_INVARIANTS = ["max_steps", "epochs", "batch_size", "lora_rank", "lora_alpha", "max_length", "seed", "lora_top_layers"]


class InvalidInput(Exception):
    """Bad input a user can fix; retrying cannot help."""


class ExportFailed(Exception):
    """The merged model does not export to ONNX faithfully; deterministic, so retrying cannot help."""


def emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def install_cancellation_handler() -> None:
    """SIGTERM ends the run at once: nothing more is saved (checkpoints are atomic, so the last
    complete one stays usable) and the exit code is 143."""

    def cancel(signum: int, _frame: Any) -> None:
        # os.write, not print: the main thread may be inside a print when the signal arrives.
        os.write(sys.stdout.fileno(), b'{"event": "cancelled"}\n')
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)


# ---- validation ------------------------------------------------------------------------------


def validate_base(base_dir: Path) -> None:
    if not base_dir.is_dir():
        raise InvalidInput(f"base model folder {base_dir} does not exist")
    missing = [name for name in ("config.json", "tokenizer.json", "tokenizer_config.json") if not (base_dir / name).exists()]
    weights = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"]
    if not any((base_dir / name).exists() for name in weights):
        missing.append("model.safetensors")
    if missing:
        raise InvalidInput(f"base model folder {base_dir} is missing {', '.join(missing)}")


def read_training_rows(train_path: Path) -> list[list[dict[str, str]]]:
    if not train_path.is_file():
        raise InvalidInput(f"training file {train_path} does not exist")
    conversations = []
    with open(train_path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidInput(f"{train_path} line {line_number} is not valid JSON: {error.msg}") from None
            messages = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(messages, list) or not messages:
                raise InvalidInput(f"{train_path} line {line_number} has no \"messages\" list")
            for message in messages:
                if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                    raise InvalidInput(f"{train_path} line {line_number}: every message needs a string \"content\"")
                if message.get("role") not in ROLES:
                    raise InvalidInput(
                        f"{train_path} line {line_number}: message role {message.get('role')!r} is not one of "
                        + ", ".join(sorted(ROLES))
                    )
            if not any(message["role"] == "assistant" for message in messages):
                raise InvalidInput(f"{train_path} line {line_number} has no assistant message to learn from")
            conversations.append([{"role": m["role"], "content": m["content"]} for m in messages])
    if not conversations:
        raise InvalidInput(f"training file {train_path} is empty")
    return conversations


def validate_config(config: TrainingConfig) -> None:
    checks = [
        (config.epochs > 0 and math.isfinite(config.epochs), "epochs must be > 0"),
        (config.max_steps is None or config.max_steps >= 1, "max-steps must be >= 1"),
        (0 < config.learning_rate < 1 and math.isfinite(config.learning_rate), "learning-rate must be in (0, 1)"),
        (config.batch_size >= 1, "batch-size must be >= 1"),
        (config.lora_rank >= 1, "lora-rank must be >= 1"),
        (config.lora_alpha > 0, "lora-alpha must be > 0"),
        (0 <= config.lora_dropout < 1, "lora-dropout must be in [0, 1)"),
        (config.checkpoint_every >= 1, "checkpoint-every must be >= 1"),
        (config.max_length >= 16, "max-length must be >= 16"),
        (config.warmup_steps >= 0, "warmup-steps must be >= 0"),
        (config.lora_top_layers is None or config.lora_top_layers >= 1, "lora-top-layers must be >= 1"),
    ]
    for passed, message in checks:
        if not passed:
            raise InvalidInput(f"invalid hyper-parameter: {message}")


def training_digest(conversations: list[list[dict[str, str]]]) -> str:
    return hashlib.sha256(json.dumps(conversations, sort_keys=True).encode()).hexdigest()


# ---- training --------------------------------------------------------------------------------


def causal_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The value of `model(**batch).loss` (mean next-token cross-entropy over the positions whose label is set), with
    the LM head applied to those positions alone. A training row is a ~230-token passage prompt and a few answer
    tokens, and only the answer is scored: on SmolLM2 the head (576 x 49,152) is a fifth of the forward FLOPs when
    it runs on every position, and its backward as much again (bench/finetune-step.py measures the difference)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(inner, "model", None)
    head = getattr(inner, "lm_head", None)
    if decoder is None or head is None:  # not a *ForCausalLM layout: let the model compute its own loss
        return model(**batch).loss
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]
    scored = targets != IGNORE_INDEX
    logits = head(hidden[:, :-1][scored]).float()
    return torch.nn.functional.cross_entropy(logits, targets[scored])


def learning_rate_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up, then cosine decay to 10 %."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batch order of one epoch depends only on (seed, epoch), so a resumed run sees the same batches."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    return length_grouped_batches(lengths, batch_size, generator)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out_dir: Path, step: int, model, optimizer, scheduler, state: dict[str, Any]) -> Path:
    checkpoints = out_dir / "checkpoints"
    final = checkpoints / f"step-{step}"
    staging = checkpoints / f".step-{step}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(str(staging / "adapter"))
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    torch.save(scheduler.state_dict(), staging / "scheduler.pt")
    torch.save(rng_state(), staging / "rng.pt")
    (staging / CHECKPOINT_STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    return final


def load_checkpoint_state(checkpoint_dir: Path) -> dict[str, Any]:
    state_path = checkpoint_dir / CHECKPOINT_STATE_FILE
    if not state_path.exists() or not (checkpoint_dir / "adapter").is_dir():
        raise InvalidInput(f"{checkpoint_dir} is not a finetune checkpoint (no {CHECKPOINT_STATE_FILE} or adapter/)")
    return json.loads(state_path.read_text())


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = CONFIGS[args.config]
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainingConfig) if getattr(args, f.name, None) is not None}
    config = TrainingConfig(**{**asdict(config), **overrides})
    validate_config(config)
    validate_base(args.base)
    conversations = read_training_rows(args.train)
    digest = training_digest(conversations)
    resume_state = None
    if args.resume_from is not None:
        resume_state = load_checkpoint_state(args.resume_from)
        for name in RESUME_INVARIANTS:
            if resume_state["config"].get(name) != getattr(config, name):
                raise InvalidInput(
                    f"--resume-from {args.resume_from} was trained with {name}={resume_state['config'].get(name)}, "
                    f"this run has {name}={getattr(config, name)}"
                )
        if resume_state["train_digest"] != digest:
            raise InvalidInput(f"--resume-from {args.resume_from} was trained on different rows than {args.train}")
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise InvalidInput(str(error)) from None

    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(args.base))
    except Exception as error:  # a local folder that will not load is corrupt input, not a transient fault
        raise InvalidInput(f"base model folder {args.base}: tokenizer does not load: {error}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInput(f"base model folder {args.base} has a tokenizer without a chat template")
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    examples = []
    for conversation in conversations:
        input_ids, labels = tokenize_conversation(tokenizer, conversation)
        if any(label != IGNORE_INDEX for label in labels[: config.max_length]):
            examples.append((input_ids[: config.max_length], labels[: config.max_length]))
    if not examples:
        raise InvalidInput(f"no row of {args.train} has an assistant token within max-length {config.max_length}")

    use_bf16 = config.bf16 and device.type == "cuda" and torch.cuda.is_bf16_supported()
    base_dtype = torch.bfloat16 if use_bf16 else torch.float32
    try:
        base_model = AutoModelForCausalLM.from_pretrained(str(args.base), dtype=base_dtype)
    except (MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as error:
        raise InvalidInput(f"base model folder {args.base}: model does not load: {error}") from None
    base_model = base_model.to(device)
    if resume_state is not None:
        model = PeftModel.from_pretrained(base_model, str(args.resume_from / "adapter"), is_trainable=True)
    else:
        lora_config = LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=[name for name in LORA_TARGET_MODULES if _has_module(base_model, name)],
            layers_to_transform=_top_layers(base_model, config.lora_top_layers),
        )
        model = get_peft_model(base_model, lora_config)
    model.train()

    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, config.warmup_steps, total_steps)
    )
    start_step = 0
    loss_history: list[float] = []
    if resume_state is not None:
        optimizer.load_state_dict(torch.load(args.resume_from / "optimizer.pt", map_location=device))
        scheduler.load_state_dict(torch.load(args.resume_from / "scheduler.pt"))
        restore_rng_state(torch.load(args.resume_from / "rng.pt", weights_only=False))
        start_step = int(resume_state["step"])
        loss_history = list(resume_state.get("loss_history", []))

    lengths = [len(ids) for ids, _ in examples]
    started = time.time()
    tokens = 0
    step = start_step
    batches: list[list[int]] = []
    epoch = step // steps_per_epoch
    if step < total_steps:
        batches = epoch_batches(lengths, config.batch_size, config.seed, epoch)[step % steps_per_epoch :]
    while step < total_steps:
        if not batches:
            epoch += 1
            batches = epoch_batches(lengths, config.batch_size, config.seed, epoch)
        batch = pad_batch([examples[i] for i in batches.pop(0)], pad_token_id, config.max_length)
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = causal_lm_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += int(batch["attention_mask"].sum())
        loss_history.append(round(loss.item(), 5))
        elapsed = max(time.time() - started, 1e-9)
        emit(
            {
                "event": "progress",
                "step": step,
                "total_steps": total_steps,
                "loss": round(loss.item(), 5),
                "learning_rate": scheduler.get_last_lr()[0],
                "tokens_per_second": round(tokens / elapsed, 1),
            }
        )
        if step % config.checkpoint_every == 0 and step < total_steps:
            state = {
                "step": step,
                "total_steps": total_steps,
                "config": asdict(config),
                "config_name": args.config,
                "train_digest": digest,
                "loss_history": loss_history,
            }
            path = save_checkpoint(args.out, step, model, optimizer, scheduler, state)
            emit({"event": "checkpoint", "step": step, "path": str(path)})
    train_seconds = time.time() - started

    model.eval()
    hf_dir = args.out / "hf"
    staging = args.out / ".hf.partial"
    shutil.rmtree(staging, ignore_errors=True)
    if base_dtype != torch.float32:
        # Merged into the base's own float32 weights: what LoRA did not touch stays bit-identical to the base (a
        # bfloat16 round trip would change every tensor), so the weight files below are shared with it.
        adapter_dir = args.out / ".adapter.partial"
        model.save_pretrained(str(adapter_dir))
        base_float32 = AutoModelForCausalLM.from_pretrained(str(args.base), dtype=torch.float32)
        model = PeftModel.from_pretrained(base_float32, str(adapter_dir))
        shutil.rmtree(adapter_dir, ignore_errors=True)
    merged = model.merge_and_unload()
    # Saved in the dtype the base keeps on disk: a bfloat16 base's untouched layers round-trip exactly (bf16 -> fp32
    # -> bf16), so their shards are byte-identical to the base's and stored once; the merged layers are rounded to
    # that dtype, as a merged checkpoint of such a base usually is. A float32 base (SmolLM2's) is saved as before.
    merged.to(device="cpu", dtype=stored_float_dtype(args.base)).save_pretrained(str(staging), safe_serialization=True)
    # One safetensors shard per decoder layer: layers the LoRA left alone are byte-identical to the base's shards.
    shard_hf_folder(staging)
    save_tokenizer_folder(tokenizer, staging)
    if (args.base / "generation_config.json").exists():
        shutil.copy2(args.base / "generation_config.json", staging / "generation_config.json")
    shutil.rmtree(hf_dir, ignore_errors=True)
    os.replace(staging, hf_dir)

    from trainer.export_onnx import ExportError, export_causal_lm

    onnx_dir = args.out / "onnx"
    try:
        manifest = export_causal_lm(hf_dir, onnx_dir)
    except ExportError as error:
        raise ExportFailed(str(error)) from None
    recent = loss_history[-min(len(loss_history), steps_per_epoch) :] or [float("nan")]
    return {
        "event": "done",
        "final_loss": round(sum(recent) / len(recent), 5),
        "export_check": manifest["export_check"],
        "onnx_dir": str(onnx_dir),
        "hf_dir": str(hf_dir),
        "steps": total_steps,
        "train_seconds": round(train_seconds, 2),
        "tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1),
    }


def stored_float_dtype(base_dir: Path) -> torch.dtype:
    """The dtype of a base folder's floating-point safetensors weights on disk: bfloat16 or float16 when every one is,
    else float32 (mixed, float32, or .bin weights)."""
    from safetensors import safe_open

    names = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64}
    found: set[str] = set()
    for path in sorted(base_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():
                dtype = handle.get_slice(name).get_dtype()
                if dtype in names:
                    found.add(dtype)
    if found == {"BF16"}:
        return torch.bfloat16
    if found == {"F16"}:
        return torch.float16
    return torch.float32


def _top_layers(model: torch.nn.Module, count: int | None) -> list[int] | None:
    if count is None:
        return None
    total = model.config.num_hidden_layers
    return list(range(max(0, total - count), total))


def _has_module(model: torch.nn.Module, suffix: str) -> bool:
    return any(name.endswith("." + suffix) for name, _ in model.named_modules())


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is also 2; keep the JSON contract
        emit({"event": "error", "kind": "invalid_input", "message": message})
        sys.exit(EXIT_INVALID_INPUT)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="Hugging Face model folder to adapt")
    parser.add_argument("--train", type=Path, required=True, help="chat rows, JSON lines {messages: [...]}")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoints/, hf/, onnx/")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="demo-cpu")
    parser.add_argument("--resume-from", type=Path, default=None, help="a checkpoints/step-<n> folder")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:<n>")
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--max-steps", type=int, help="overrides --epochs")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lora-rank", type=int)
    parser.add_argument("--lora-alpha", type=float)
    parser.add_argument("--lora-dropout", type=float)
    parser.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    parser.add_argument("--max-length", type=int, help="tokens per row; longer rows are truncated")
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--lora-top-layers", type=int, help="adapt only the top N decoder layers")
    parser.add_argument("--seed", type=int)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        summary = run(args)
    except InvalidInput as error:
        emit({"event": "error", "kind": "invalid_input", "message": str(error)})
        sys.exit(EXIT_INVALID_INPUT)
    except ExportFailed as error:
        emit({"event": "error", "kind": "export_failed", "message": str(error)})
        sys.exit(EXIT_INVALID_INPUT)
    emit(summary)


if __name__ == "__main__":
    install_cancellation_handler()
    main()
