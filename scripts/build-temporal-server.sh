#!/usr/bin/env bash
# Builds the Temporal Server (`cmd/server`) and its schema tool (`cmd/tools/sql`, temporal-sql-tool) of the Go module
# go.temporal.io/server from the Go module proxy, once: the binaries are cached in a folder keyed by the version, and a
# second call only prints that folder (stdout; progress on stderr). Needs Go ≥ the module's `go` line (1.26.8 for
# v1.32.1). WEFT_TEMPORAL_SERVER_DIR overrides the folder (default ~/.cache/weft/temporal-server-v<version>).
# `--print` prints the folder without building (exit 1 when the binaries are not there).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[temporal-server] $*" >&2; }

# Keep in step with lib/temporal/cluster.ts (temporalServerVersion); test/unit/cluster-definitions.test.ts checks it.
version=1.32.1
folder=${WEFT_TEMPORAL_SERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft/temporal-server-v$version}
if [ -x "$folder/temporal-server" ] && [ -x "$folder/temporal-sql-tool" ]; then echo "$folder"; exit 0; fi
if [ "${1:-}" = "--print" ]; then
  say "not built yet: run 'bash scripts/build-temporal-server.sh' (it builds into $folder)"
  exit 1
fi

if ! command -v go >/dev/null 2>&1; then
  say "missing Go: install Go 1.26.8 or later (Debian: apt-get install golang-go, if its version is recent enough)"
  exit 1
fi
say "building go.temporal.io/server v$version (cmd/server, cmd/tools/sql) with $(go version | awk '{print $3}') into $folder"
staging=$folder.partial.$$
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging"
started=$(date +%s)
# GOTOOLCHAIN=local: a Go older than the module asks for fails with Go's own message instead of fetching a toolchain.
# CGO_ENABLED=0 as Temporal's release builds (pure-Go drivers); -trimpath and -s -w keep the binaries small.
GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN=$staging GOFLAGS="${GOFLAGS:-} -trimpath" \
  go install -ldflags='-s -w' "go.temporal.io/server/cmd/server@v$version" "go.temporal.io/server/cmd/tools/sql@v$version"
mv "$staging/server" "$staging/temporal-server"
mv "$staging/sql" "$staging/temporal-sql-tool"
rm -rf "$folder"
mv "$staging" "$folder"
say "built in $(($(date +%s) - started))s: $(du -h "$folder/temporal-server" | cut -f1) temporal-server, $(du -h "$folder/temporal-sql-tool" | cut -f1) temporal-sql-tool"
echo "$folder"
