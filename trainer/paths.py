"""Where build outputs and demo data live; mirrors lib/config/config.ts (relative paths resolve
against the current directory)."""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA_DIR = REPOSITORY_ROOT / "data" / "climate"


def weft_home() -> Path:
    return Path(os.environ.get("WEFT_HOME") or ".weft").resolve()


def models_dir() -> Path:
    configured = os.environ.get("WEFT_MODELS_DIR")
    return Path(configured).resolve() if configured else weft_home() / "models"


def tokenizer_dir() -> Path:
    return models_dir() / "tokenizer"


def base_chat_hf_dir() -> Path:
    return models_dir() / "base-chat" / "hf"


def base_chat_onnx_dir() -> Path:
    return models_dir() / "base-chat" / "onnx"


def minilm_onnx_dir() -> Path:
    return models_dir() / "minilm" / "onnx"
