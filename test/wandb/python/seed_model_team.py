"""The seed's model-team half (§2): log a model artifact with files, link it into the `RAG Chat Models`
registry, then — as the app team — use it from the registry and download it. Also reads a version that
weft itself published, through wandb.Api(). Environment only: WANDB_BASE_URL, WANDB_API_KEY.

Prints `RESULT {...}` with digests of what was downloaded, for the test to compare with what was uploaded.
"""

import hashlib
import json
import os
import pathlib

import wandb

ENTITY = os.environ["SEED_ENTITY"]
PROJECT = os.environ["SEED_PROJECT"]
ORG = os.environ["SEED_ORG"]
MODEL_DIR = pathlib.Path(os.environ["SEED_MODEL_DIR"])
DOWNLOAD_ROOT = pathlib.Path(os.environ["SEED_DOWNLOAD_DIR"])
ARTIFACT_NAME = "Finetuned Llama-3.2"


def sha256s(root: pathlib.Path) -> dict:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


wandb.login()

# Model team: fine-tune (here: the files are given), log, link into the registry with an alias.
with wandb.init(project=PROJECT, entity=ENTITY, job_type="fine-tune") as train_run:
    model_artifact = wandb.Artifact(name="finetuned-llama", type="model", metadata={"base_model": "Llama-3.2-1B"})
    model_artifact.add_dir(str(MODEL_DIR))
    train_run.log_artifact(model_artifact, aliases=["candidate"])
    train_run.link_artifact(
        model_artifact, target_path=f"{ORG}/wandb-registry-RAG Chat Models/{ARTIFACT_NAME}", aliases=["staging"]
    )
    train_run_id = train_run.id

# App team (seed §2, UnslothLoRAChatModel.model_post_init): use the registry version and download it.
MODEL_REG_URL = f"wandb-artifact:///{ORG}/wandb-registry-RAG Chat Models/{ARTIFACT_NAME}:v0"
with wandb.init(project=PROJECT, entity=ENTITY, job_type="model_download") as run:
    artifact = run.use_artifact(MODEL_REG_URL.replace("wandb-artifact:///", ""))
    model_path = artifact.download(root=str(DOWNLOAD_ROOT / "used"))
    download_run_id = run.id

# The public API: the registry link with its aliases, and a version weft published by itself.
api = wandb.Api()
linked = api.artifact(f"{ORG}/wandb-registry-RAG Chat Models/{ARTIFACT_NAME}:staging")
# Promote it the way the registry UI's "Use" code does: add an alias and save.
linked.aliases.append("production")
linked.save()
promoted = api.artifact(f"{ORG}/wandb-registry-RAG Chat Models/{ARTIFACT_NAME}:production")
published = api.artifact(f"{ORG}/wandb-registry-RAG Models/RAG Model:production")
published_path = published.download(root=str(DOWNLOAD_ROOT / "published"))

print(
    "RESULT "
    + json.dumps(
        {
            "train_run_id": train_run_id,
            "download_run_id": download_run_id,
            "downloaded": sha256s(pathlib.Path(model_path)),
            "linked_aliases": sorted(promoted.aliases),
            "linked_version": linked.version,
            "linked_source_name": linked.source_name,
            "published_files": sha256s(pathlib.Path(published_path)),
            "published_aliases": sorted(published.aliases),
            "published_metadata": published.metadata,
            "published_type": published.type,
        }
    )
)
