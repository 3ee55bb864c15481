"""Tiny random models built in the test session: the real pretrain takes minutes, these take a second."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPOSITORY_ROOT / "data" / "climate" / "corpus.jsonl"
QA_TRAIN = REPOSITORY_ROOT / "data" / "climate" / "qa-train.jsonl"


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    from trainer.build_tokenizer import save_hf_tokenizer, train_tokenizer, training_texts

    folder = tmp_path_factory.mktemp("tokenizer")
    save_hf_tokenizer(train_tokenizer(training_texts(CORPUS, QA_TRAIN), vocab_size=512), folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from trainer.build_base_model import generation_config_for, tiny_llama_config

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    config = tiny_llama_config(
        tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=1024,
    )
    model = LlamaForCausalLM(config)
    # Larger weights than the default init: logits of a few units, like a trained model, so parity
    # checks compare values that matter.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    model.generation_config = generation_config_for(tokenizer)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def chat_rows_file(tmp_path_factory) -> Path:
    from trainer.data import rag_chat_rows

    rows = rag_chat_rows(QA_TRAIN, CORPUS)[:8]
    path = tmp_path_factory.mktemp("chat") / "train.jsonl"
    # Short contexts keep the test runs fast.
    for row in rows:
        row["messages"][1]["content"] = row["messages"][1]["content"][:150]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
