"""Reads back, with the public wandb and weave SDKs only, what weft's pipeline published into a W&B server:
the registry versions and aliases (wandb.Api()), the chat model's files, the RagModel reference artifact, the
RagModel object it points at, and the evaluation's calls (weave's client). Prints `RESULT {...}`.
"""

import collections
import hashlib
import json
import os
import pathlib

import wandb
import weave

ENTITY = os.environ["SEED_ENTITY"]
PROJECT = os.environ["SEED_PROJECT"]
ORG = os.environ["SEED_ORG"]
APP = os.environ["READ_APP"]
RAG_COLLECTION = os.environ["READ_RAG_COLLECTION"]
EVAL_RUN_ID = os.environ["READ_EVAL_RUN_ID"]
DOWNLOADS = pathlib.Path(os.environ["READ_DOWNLOAD_DIR"])


def sha256s(root: pathlib.Path) -> dict:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


api = wandb.Api()
chat = api.artifact(f"{ORG}/wandb-registry-RAG Chat Models/{APP}:candidate")
chat_path = chat.download(root=str(DOWNLOADS / "chat"))
published = api.artifact(f"{ORG}/wandb-registry-RAG Models/{RAG_COLLECTION}:production")
reference = published.manifest.entries["rag-model"].ref
source = api.artifact(f"{ENTITY}/{PROJECT}/{APP}-rag-model:{reference.rsplit(':', 1)[1]}")

client = weave.init(f"{ENTITY}/{PROJECT}")
rag_model = weave.ref(reference).get()
calls = list(client.get_calls())
in_run = [call for call in calls if (call.attributes or {}).get("wandb-run-id") == EVAL_RUN_ID]
by_op = collections.Counter(call.op_name.split("/op/")[-1].split(":")[0] for call in in_run)

print(
    "RESULT "
    + json.dumps(
        {
            "chat_version": chat.version,
            "chat_aliases": sorted(chat.aliases),
            "chat_type": chat.type,
            "chat_files": sha256s(pathlib.Path(chat_path)),
            "published_version": published.version,
            "published_aliases": sorted(published.aliases),
            "published_type": published.type,
            "published_metadata": published.metadata,
            "reference": reference,
            "source_aliases": sorted(source.aliases),
            "rag_model_loaded": rag_model is not None,
            "calls_total": len(calls),
            "calls_in_run": len(in_run),
            "calls_by_op": dict(by_op),
            "calls_ended": sum(1 for call in in_run if call.ended_at is not None),
        },
        default=str,
    )
)
