"""trainer.import_model: a checkpoint becomes a checked base model folder, or fails with a named error and leaves nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trainer import paths
from trainer.import_model import PROVENANCE_FILE, ModelImportError, import_model

SMOLLM2_HF = paths.models_dir() / "smollm2" / "hf"


def test_a_hugging_face_folder_imports_with_provenance_and_checks(tiny_model_dir: Path, tmp_path: Path):
    out = tmp_path / "imported"
    provenance = import_model(out, hf=tiny_model_dir, extra={"licence": "test"})
    assert (out / "model.safetensors.index.json").is_file() and (out / "tokenizer.json").is_file()
    assert (out / "model-layer-000.safetensors").is_file() and (out / "model-shared.safetensors").is_file()
    saved = json.loads((out / PROVENANCE_FILE).read_text())
    assert saved == json.loads(json.dumps(provenance))
    assert saved["source"]["kind"] == "hf-folder" and saved["source"]["licence"] == "test"
    assert saved["model_type"] == "llama" and saved["num_layers"] == 2
    assert saved["checks"]["max_abs_logit_diff"] <= 1e-4
    assert not (tmp_path / "imported.partial").exists()


def test_the_smollm2_folder_setup_built_imports_as_the_same_model(tmp_path: Path):
    if not (SMOLLM2_HF / PROVENANCE_FILE).is_file():
        pytest.fail(f"SmolLM2 is not built ({SMOLLM2_HF}): run bash scripts/setup.sh")
    out = tmp_path / "smollm2"
    provenance = import_model(out, hf=SMOLLM2_HF)
    built = json.loads((SMOLLM2_HF / PROVENANCE_FILE).read_text())
    assert provenance["parameters"] == built["parameters"] == 134_515_008
    assert provenance["checks"]["greedy_answer"] == built["checks"]["greedy_answer"]
    assert provenance["checks"]["max_abs_logit_diff"] == 0.0


def test_an_unsupported_architecture_is_refused_naming_what_is_supported(tiny_model_dir: Path, tmp_path: Path):
    folder = tmp_path / "bert"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="bert", architectures=["BertModel"])
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelImportError) as raised:
        import_model(tmp_path / "out", hf=folder)
    assert raised.value.kind == "unsupported_architecture"
    assert "'bert'" in str(raised.value) and "llama" in str(raised.value) and "mistral" in str(raised.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize(
    "break_folder, kind",
    [
        (lambda folder: (folder / "config.json").unlink(), "not_a_model_folder"),
        (lambda folder: (folder / "model.safetensors").unlink(), "no_weights"),
        (lambda folder: (folder / "config.json").write_text("{not json"), "bad_config"),
        (lambda folder: (folder / "tokenizer.json").unlink(), "no_tokenizer"),
    ],
)
def test_a_malformed_folder_fails_with_its_reason_and_leaves_nothing(tiny_model_dir, tmp_path, break_folder, kind):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    break_folder(folder)
    with pytest.raises(ModelImportError) as raised:
        import_model(tmp_path / "out", hf=folder)
    assert raised.value.kind == kind
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_folder_without_a_chat_template_is_refused(tiny_model_dir: Path, tmp_path: Path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(ModelImportError) as raised:
        import_model(tmp_path / "out", hf=folder)
    assert raised.value.kind == "no_chat_template"
