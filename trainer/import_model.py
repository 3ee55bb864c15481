"""Import a Llama-family causal LM (a GGUF file or a Hugging Face folder) as a checked Hugging Face folder.

    python -m trainer.import_model --gguf FILE --out DIR [--provenance JSON]
    python -m trainer.import_model --hf DIR --out DIR [--provenance JSON]

The output folder holds the weights as one safetensors shard per decoder layer plus one shared shard
(model.safetensors.index.json; trainer/weight_files.py), config.json, generation_config.json, tokenizer.json,
tokenizer_config.json (with the chat template) and weft-provenance.json. Before it is published
(written to DIR.partial, then renamed) it is checked:

  - the architecture is one the ONNX export serves (trainer.export_onnx.SUPPORTED_MODEL_TYPES);
  - the tokenizer has a chat template and an end-of-turn token;
  - the saved folder, loaded back, gives the source's logits on a fixed chat prompt (max |difference|
    <= LOGIT_TOLERANCE) and the same greedy answer token for token;
  - for GGUF files, the rebuilt tokenizer gives the GGUF tokenizer's ids on the demo corpus.

weft-provenance.json ("weft-model-provenance/1") records the source (kind, file, sha256, and what
--provenance adds: package, version, licence), the parameter count, the dimensions and the checks.
Errors print one JSON line {"event": "error", "kind": ..., "message": ...} and exit 1; nothing is
left at DIR.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from trainer import paths
from trainer.chat_tokens import chat_prompt_ids
from trainer.export_onnx import SUPPORTED_MODEL_TYPES, model_dimensions
from trainer.weight_files import sha256_of, shard_hf_folder

PROVENANCE_FORMAT = "weft-model-provenance/1"
PROVENANCE_FILE = "weft-provenance.json"
LOGIT_TOLERANCE = 1e-4
GREEDY_TOKENS = 24
CHECK_MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
# GGUF general.architecture values transformers can de-quantise that are Llama-family for weft.
SUPPORTED_GGUF_ARCHITECTURES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "olmo", "olmo2", "granite"}
# Llama 3's pre-tokenizer split (GGUF tokenizer.ggml.pre "llama-bpe"), as in its tokenizer.json.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


class ModelImportError(Exception):
    """The checkpoint cannot become a weft base model; `kind` names the failure for the CLI."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_MODEL_TYPES))


# --- GGUF ---------------------------------------------------------------------------------------


def gguf_metadata(gguf_path: Path) -> dict[str, Any]:
    """The scalar and string fields of a GGUF header (no tensors are read)."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(gguf_path))
    except Exception as error:  # noqa: BLE001 - any parse failure means "not a GGUF file"
        raise ModelImportError("invalid_gguf", f"{gguf_path} is not a readable GGUF file ({error})") from error
    values: dict[str, Any] = {}
    for name, field in reader.fields.items():
        if name in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.scores"):
            continue
        try:
            values[name] = field.contents()
        except Exception:  # noqa: BLE001 - an exotic field type is not needed here
            continue
    return values


def byte_level_tokenizer(gguf_tokenizer, pre: str):
    """A clean byte-level BPE tokenizer from the vocabulary and merges transformers read out of the GGUF.

    transformers converts GGUF "gpt2" tokenizers with sentencepiece-style byte fallback and a decoder that
    maps U+2581 to a space, and adds the BOS token to every encoding; the models (SmolLM2, Llama 3) were
    trained with none of that. The pre-tokenizer follows tokenizer.ggml.pre."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    source = json.loads(gguf_tokenizer.backend_tokenizer.to_str())
    vocabulary = source["model"]["vocab"]
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ", 1)) for merge in source["model"]["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocabulary, merges=merges, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if pre == "smollm":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    elif pre == "llama-bpe":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
            ]
        )
    else:
        tokenizer.pre_tokenizer = byte_level
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([token["content"] for token in source["added_tokens"] if token.get("special")])
    return tokenizer


def tokenizer_from_gguf(gguf_dir: Path, gguf_name: str, metadata: dict[str, Any]):
    """The Hugging Face tokenizer for a GGUF file: special tokens and BOS behaviour from its header."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    gguf_tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_name)
    vocabulary = gguf_tokenizer.convert_ids_to_tokens(list(range(len(gguf_tokenizer))))

    def token(field: str) -> str | None:
        index = metadata.get(f"tokenizer.ggml.{field}")
        return vocabulary[int(index)] if index is not None and 0 <= int(index) < len(vocabulary) else None

    kind = metadata.get("tokenizer.ggml.model")
    if kind == "gpt2":
        backend = byte_level_tokenizer(gguf_tokenizer, str(metadata.get("tokenizer.ggml.pre", "")))
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend,
            bos_token=token("bos_token_id"),
            eos_token=token("eos_token_id"),
            unk_token=token("unknown_token_id"),
            pad_token=token("padding_token_id") or token("eos_token_id"),
            clean_up_tokenization_spaces=False,
            model_max_length=int(metadata.get(f"{metadata.get('general.architecture')}.context_length", 2048)),
        )
        tokenizer.add_bos_token = bool(metadata.get("tokenizer.ggml.add_bos_token", False))
    else:
        # sentencepiece-style ("llama"): transformers' conversion is the Llama tokenizer itself.
        tokenizer = gguf_tokenizer
    template = metadata.get("tokenizer.chat_template")
    if isinstance(template, str):
        tokenizer.chat_template = template
    return tokenizer, gguf_tokenizer


def check_tokenizer_against_gguf(tokenizer, gguf_tokenizer) -> int:
    """Ids of the rebuilt tokenizer equal the GGUF tokenizer's (its BOS aside) on the demo corpus."""
    from trainer.data import read_jsonl

    texts = [document["text"] for document in read_jsonl(paths.DEMO_DATA_DIR / "corpus.jsonl")]
    texts += ["CO₂ rose to 420 ppm in 2023 — about 50 % above pre-industrial levels.", "  tabs\tand\n\nnewlines  "]
    bos = gguf_tokenizer.bos_token_id
    for text in texts:
        ours = tokenizer.encode(text, add_special_tokens=False)
        theirs = gguf_tokenizer.encode(text, add_special_tokens=False)
        if theirs and theirs[0] == bos and (not ours or ours[0] != bos):
            theirs = theirs[1:]
        if ours != theirs:
            raise ModelImportError("tokenizer_mismatch", f"the rebuilt tokenizer differs from the GGUF's on {text[:60]!r}")
        if tokenizer.decode(ours) != text:
            raise ModelImportError("tokenizer_mismatch", f"decode(encode(text)) is not the text for {text[:60]!r}")
    return len(texts)


# --- shared checks -------------------------------------------------------------------------------


def check_architecture(config) -> None:
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelImportError(
            "unsupported_architecture",
            f"model_type {config.model_type!r} ({', '.join(getattr(config, 'architectures', None) or [])}) is not "
            f"supported; weft imports decoder-only Llama-family models: {supported_list()}",
        )


def check_tokenizer(tokenizer) -> int:
    """The chat template renders and the end-of-turn token exists; returns the end-of-turn id."""
    if not getattr(tokenizer, "chat_template", None):
        raise ModelImportError(
            "no_chat_template", "the tokenizer has no chat template (tokenizer_config.json chat_template); weft needs an instruct model"
        )
    try:
        ids = chat_prompt_ids(tokenizer, CHECK_MESSAGES)
    except Exception as error:  # noqa: BLE001 - a broken template is the user's model, not a weft bug
        raise ModelImportError("bad_chat_template", f"the chat template does not render ({error})") from error
    if not ids:
        raise ModelImportError("bad_chat_template", "the chat template renders an empty prompt")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ModelImportError("no_eos_token", "the tokenizer has no eos_token (the end-of-turn token generation stops at)")
    return eos


def logits_and_greedy(model, tokenizer, eos_ids: list[int]) -> tuple[torch.Tensor, list[int]]:
    prompt = chat_prompt_ids(tokenizer, CHECK_MESSAGES)
    input_ids = torch.tensor([prompt])
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits[0].float()
        output = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=GREEDY_TOKENS,
            do_sample=False,
            eos_token_id=eos_ids,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0],
        )
    return logits, output[0, len(prompt) :].tolist()


def generation_config_for(tokenizer, source_config=None):
    from transformers import GenerationConfig

    eos_ids = [tokenizer.eos_token_id]
    if source_config is not None:
        extra = source_config.eos_token_id
        for value in extra if isinstance(extra, (list, tuple)) else [extra]:
            if value is not None and int(value) not in eos_ids:
                eos_ids.append(int(value))
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0],
        do_sample=False,
        max_new_tokens=64,
    )


# --- import --------------------------------------------------------------------------------------


def load_source(gguf: Path | None, hf: Path | None):
    """(model, tokenizer, source record, tokenizer check count) from a GGUF file or a Hugging Face folder."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if gguf is not None:
        if not gguf.is_file():
            raise ModelImportError("not_found", f"{gguf} does not exist")
        metadata = gguf_metadata(gguf)
        architecture = metadata.get("general.architecture")
        if architecture not in SUPPORTED_GGUF_ARCHITECTURES:
            raise ModelImportError(
                "unsupported_architecture",
                f"GGUF architecture {architecture!r} is not supported; weft imports decoder-only Llama-family "
                f"models: {', '.join(sorted(SUPPORTED_GGUF_ARCHITECTURES))}",
            )
        tokenizer, gguf_tokenizer = tokenizer_from_gguf(gguf.parent, gguf.name, metadata)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # transformers 5 marks a model loaded from GGUF as quantised (GGUF) and refuses to save it, though its weights
        # are already de-quantised float32 tensors: drop the mark so save_pretrained writes them (4.x sets none).
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer = None
        if getattr(model, "is_quantized", False):
            try:
                model.is_quantized = False
            except AttributeError:  # a property over hf_quantizer in some versions
                pass
        if getattr(model.config, "quantization_config", None) is not None:
            try:
                del model.config.quantization_config
            except AttributeError:
                model.config.quantization_config = None
        checked = check_tokenizer_against_gguf(tokenizer, gguf_tokenizer) if tokenizer is not gguf_tokenizer else 0
        source = {"kind": "gguf", "file": gguf.name, "sha256": sha256_of(gguf), "bytes": gguf.stat().st_size}
        source["quantization"] = str(metadata.get("general.file_type", ""))
        source["name"] = metadata.get("general.name")
        return model, tokenizer, source, checked
    assert hf is not None
    if not (hf / "config.json").is_file():
        raise ModelImportError("not_a_model_folder", f"{hf} is not a Hugging Face model folder (no config.json)")
    try:
        config = AutoConfig.from_pretrained(str(hf))
    except Exception as error:  # noqa: BLE001
        raise ModelImportError("bad_config", f"{hf}/config.json does not load ({error})") from error
    check_architecture(config)
    weights = sorted(hf.glob("*.safetensors")) + sorted(hf.glob("*.bin"))
    if not weights:
        raise ModelImportError("no_weights", f"{hf} has no weights (*.safetensors or *.bin)")
    if not (hf / "tokenizer.json").is_file() and not (hf / "tokenizer.model").is_file():
        raise ModelImportError("no_tokenizer", f"{hf} has no tokenizer (tokenizer.json or tokenizer.model)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(hf))
        model = AutoModelForCausalLM.from_pretrained(str(hf), dtype="auto")
    except Exception as error:  # noqa: BLE001
        raise ModelImportError("unreadable_model", f"{hf} does not load as a causal LM ({error})") from error
    digest = hashlib.sha256()
    for path in weights:
        digest.update(sha256_of(path).encode())
    source = {"kind": "hf-folder", "folder": str(hf), "weights_sha256": digest.hexdigest()}
    return model, tokenizer, source, 0


def import_model(out_dir: Path, gguf: Path | None = None, hf: Path | None = None, extra: dict | None = None) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.build_tokenizer import save_tokenizer_folder

    model, tokenizer, source, tokenizer_texts = load_source(gguf, hf)
    model.eval()
    check_architecture(model.config)
    eos = check_tokenizer(tokenizer)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.generation_config = generation_config_for(tokenizer, model.config)
    model.config.eos_token_id = eos
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.bos_token_id = tokenizer.bos_token_id
    eos_ids = list(model.generation_config.eos_token_id)
    source_logits, source_answer = logits_and_greedy(model, tokenizer, eos_ids)
    if not torch.isfinite(source_logits).all():
        raise ModelImportError("non_finite_logits", "the model's logits on the check prompt are not finite")

    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model.save_pretrained(str(staging), safe_serialization=True)
        # Per-layer shards (trainer/weight_files.py): a fine-tune's unchanged layers are then the same files.
        shard_hf_folder(staging)
        save_tokenizer_folder(tokenizer, staging)
        saved = AutoModelForCausalLM.from_pretrained(str(staging), dtype=model.dtype).eval()
        saved_tokenizer = AutoTokenizer.from_pretrained(str(staging))
        if chat_prompt_ids(saved_tokenizer, CHECK_MESSAGES) != chat_prompt_ids(tokenizer, CHECK_MESSAGES):
            raise ModelImportError("tokenizer_mismatch", "the saved tokenizer encodes the check prompt differently")
        saved_logits, saved_answer = logits_and_greedy(saved, saved_tokenizer, eos_ids)
        difference = float((saved_logits - source_logits).abs().max())
        if not difference <= LOGIT_TOLERANCE:
            raise ModelImportError("logits_mismatch", f"saved logits differ from the source by {difference:.3g}")
        if saved_answer != source_answer:
            raise ModelImportError("greedy_mismatch", "the saved model's greedy answer differs from the source's")
        parameters = sum(parameter.numel() for parameter in model.parameters())
        provenance = {
            "format": PROVENANCE_FORMAT,
            "source": {**source, **(extra or {})},
            "architecture": (model.config.architectures or [type(model).__name__])[0],
            "model_type": model.config.model_type,
            "parameters": parameters,
            "dtype": str(model.dtype).replace("torch.", ""),
            **model_dimensions(model.config),
            "checks": {
                "max_abs_logit_diff": difference,
                "greedy_prompt": CHECK_MESSAGES[0]["content"],
                "greedy_answer": tokenizer.decode(saved_answer, skip_special_tokens=True),
                "tokenizer_texts_matched": tokenizer_texts,
            },
        }
        (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(out_dir)
    return provenance


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", type=Path, help="a GGUF file")
    source.add_argument("--hf", type=Path, help="a Hugging Face model folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced when the checks pass)")
    parser.add_argument("--provenance", default="{}", help="JSON object merged into provenance.source")
    args = parser.parse_args(argv)
    try:
        provenance = import_model(args.out.resolve(), args.gguf, args.hf, json.loads(args.provenance))
    except ModelImportError as error:
        print(json.dumps({"event": "error", "kind": error.kind, "message": str(error)}), flush=True)
        sys.exit(1)
    print(json.dumps({"event": "done", "out": str(args.out), "provenance": provenance}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
