#!/usr/bin/env bash
# Creates .venv-sdk: the pinned W&B Python SDKs (wandb, weave) the W&B-compatibility tests run
# against `weft serve` (test/wandb/). Idempotent; pip caches downloads.
set -euo pipefail
cd "$(dirname "$0")/.."

wandb_version=0.31.0
weave_version=0.54.0
# weave.ref(<Evaluation>).get() imports weave.scorers, which needs numpy (the seed's own environment has it).
numpy_version=2.2.6
venv=.venv-sdk
say() { printf '\033[1m[setup-wandb-sdks]\033[0m %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv…"
  python3 -m venv "$venv"
fi
installed() { "$venv/bin/pip" show "$1" 2>/dev/null | grep -q "^Version: $2$"; }
if installed wandb "$wandb_version" && installed weave "$weave_version" && installed numpy "$numpy_version"; then
  say "wandb ${wandb_version} and weave ${weave_version} are installed"
else
  say "installing wandb==${wandb_version} weave==${weave_version} into $venv…"
  "$venv/bin/pip" install -q --disable-pip-version-check "wandb==${wandb_version}" "weave==${weave_version}" "numpy==${numpy_version}"
fi
# wandb-core (the Go binary in the wheel) carries all of wandb's traffic: check that it starts.
"$venv/bin/python" - <<'PY'
import os, pathlib, wandb
core = pathlib.Path(wandb.__file__).parent / "bin" / "wandb-core"
assert core.exists() and os.access(core, os.X_OK), f"wandb-core missing at {core}"
import weave, weave.scorers  # noqa: F401
print(f"wandb {wandb.__version__}, weave {weave.__version__}, wandb-core at {core}")
PY
