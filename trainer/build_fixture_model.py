"""Build the generation fixture: a tiny Llama whose greedy output is fixed by construction, not by training.

    python -m trainer.build_fixture_model --out $WEFT_MODELS_DIR/fixture-chat

The tests of generation semantics (stop tokens vs budgets, stop strings, min_new_tokens, batching, streaming)
need outputs that are the same on every machine. A trained model's outputs are not: setup trains the demo model
on the installing machine, and its greedy continuation changes with the floating point of that machine.

Construction ("successor model"): byte-level tokens (no merges), one-hot embeddings, attention and MLP outputs
zeroed, so the hidden state at a position is its own token; the LM head maps a token to a logit of
FIRST_CHOICE_LOGIT for its successor and SECOND_CHOICE_LOGIT for a second choice, 0 elsewhere. So the next
token depends only on the current one, with a margin of 4 — far above any rounding — and:

    letters   'a' → 'b' → … → 'z' → ' ' → 'a'            (never stops)
    digits    '9' → '8' → … → '1' → '0' → <|im_end|>      (a countdown that stops)
    anything else (newline, punctuation, capitals, special tokens) → 'a'
    second choice: after '0' (used when min_new_tokens masks the stop token) '9', else ' '

A chat prompt ends with "assistant\\n", so a chat reply is "abcdefghijklmnopqrstuvwxyz abc…"; a raw prompt ending
in "3" gets "210" and then the stop token. `fixture.json` in the folder writes these rules down for the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import string
from pathlib import Path

import torch

from trainer import paths
from trainer.build_tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, save_tokenizer_folder

FORMAT = "weft-fixture-chat/1"
FIRST_CHOICE_LOGIT = 8.0
SECOND_CHOICE_LOGIT = 4.0
HIDDEN_SIZE = 320  # >= vocabulary (261) for one-hot embeddings; 4 heads of 80 (a multiple of 16 for the fused decoder)


def fixture_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocabulary = {token: index for index, token in enumerate(SPECIAL_TOKENS + alphabet)}
    tokenizer = Tokenizer(models.BPE(vocab=vocabulary, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=SPECIAL_TOKENS[0],
        eos_token=SPECIAL_TOKENS[1],
        pad_token=SPECIAL_TOKENS[2],
        additional_special_tokens=SPECIAL_TOKENS[3:],
        model_max_length=512,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    hf_tokenizer.chat_template = CHAT_TEMPLATE
    return hf_tokenizer


def successor_rules(tokenizer) -> tuple[dict[int, int], dict[int, int], int]:
    def token_of(character: str) -> int:
        ids = tokenizer.encode(character, add_special_tokens=False)
        assert len(ids) == 1, (character, ids)
        return ids[0]

    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    letters = string.ascii_lowercase
    first = {index: token_of("a") for index in range(len(tokenizer))}
    second = {index: token_of(" ") for index in range(len(tokenizer))}
    for left, right in zip(letters, letters[1:]):
        first[token_of(left)] = token_of(right)
    first[token_of("z")] = token_of(" ")
    first[token_of(" ")] = token_of("a")
    for digit in range(1, 10):
        first[token_of(str(digit))] = token_of(str(digit - 1))
    first[token_of("0")] = stop
    second[token_of("0")] = token_of("9")
    return first, second, stop


def build(out_dir: Path) -> dict:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = fixture_tokenizer()
    vocabulary_size = len(tokenizer)
    config = LlamaConfig(
        vocab_size=vocabulary_size,
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    first, second, stop = successor_rules(tokenizer)
    torch.manual_seed(0)  # only the zeroed-out layers' unused weights are random; outputs do not depend on them
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        embedding = torch.zeros(vocabulary_size, HIDDEN_SIZE)
        embedding[torch.arange(vocabulary_size), torch.arange(vocabulary_size)] = 1.0
        model.model.embed_tokens.weight.copy_(embedding)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        # RMSNorm turns the one-hot row into sqrt(hidden) * e_t; divide it out so logits are exactly the constants.
        scale = HIDDEN_SIZE**0.5
        head = torch.zeros(vocabulary_size, HIDDEN_SIZE)
        for token in range(vocabulary_size):
            head[second[token], token] = SECOND_CHOICE_LOGIT / scale
            head[first[token], token] = FIRST_CHOICE_LOGIT / scale
        model.lm_head.weight.copy_(head)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[stop, tokenizer.eos_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=64,
    )

    # The construction holds in PyTorch before anything is written.
    for prompt, expected in (("count 3", "210"), ("xy", "z abc")):
        ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])
        output = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(expected) + 1)
        text = tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True)
        if not text.startswith(expected):
            raise SystemExit(f"fixture construction broken: {prompt!r} continued as {text!r}, expected {expected!r}")

    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging), safe_serialization=True)
    save_tokenizer_folder(tokenizer, staging)
    weights_sha256 = hashlib.sha256((staging / "model.safetensors").read_bytes()).hexdigest()
    rules = {
        "format": FORMAT,
        "stop_token_id": stop,
        "successor": {str(token): following for token, following in first.items()},
        "second_choice": {str(token): following for token, following in second.items()},
        "logits": {"first": FIRST_CHOICE_LOGIT, "second": SECOND_CHOICE_LOGIT, "other": 0.0},
        "model_safetensors_sha256": weights_sha256,
    }
    (staging / "fixture.json").write_text(json.dumps(rules, indent=1) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return rules


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="HF folder; default $WEFT_MODELS_DIR/fixture-chat/hf")
    parser.add_argument("--onnx-out", type=Path, default=None, help="default $WEFT_MODELS_DIR/fixture-chat/onnx")
    args = parser.parse_args(argv)
    out_dir = args.out or paths.models_dir() / "fixture-chat" / "hf"
    onnx_dir = args.onnx_out or paths.models_dir() / "fixture-chat" / "onnx"
    rules = build(out_dir)

    from trainer.export_onnx import export_causal_lm

    # The float16 export sits beside the float32 one (onnx-fp16): the runtime's half-precision paths are tested on it.
    float16_dir = onnx_dir.with_name(onnx_dir.name + "-fp16")
    export_causal_lm(out_dir, float16_dir, dtype="float16")
    shutil.copyfile(out_dir / "fixture.json", float16_dir / "fixture.json")
    manifest = export_causal_lm(out_dir, onnx_dir)
    # Written last: setup takes fixture.json in the float32 folder as the proof that the whole build is there.
    shutil.copyfile(out_dir / "fixture.json", onnx_dir / "fixture.json")
    print(
        json.dumps(
            {
                "event": "done",
                "hf_dir": str(out_dir),
                "onnx_dir": str(onnx_dir),
                "weights_sha256": rules["model_safetensors_sha256"],
                "export_check": manifest["export_check"],
            }
        )
    )


if __name__ == "__main__":
    main()
