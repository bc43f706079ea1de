#!/usr/bin/env bash
# Builds the ingress proxy (Traefik, version pinned in proxy/go.mod) from the Go
# module proxy into the versioned build cache:
#   ${ROLLOUT_HARNESS_CACHE:-$HOME/.cache/rollout-harness}/traefik/<version>/bin/traefik
# A warm cache whose source hash matches is reused. Prints the binary's path.
set -euo pipefail
PROXY_DIR="$(cd "$(dirname "$0")" && pwd)"
VERSION="$(awk '$1 == "require" && $2 == "github.com/traefik/traefik/v3" {print $3}' "$PROXY_DIR/go.mod")"
[[ -n "$VERSION" ]] || { echo "[proxy] ERROR: no Traefik version in $PROXY_DIR/go.mod" >&2; exit 1; }
BIN_DIR="${ROLLOUT_HARNESS_CACHE:-$HOME/.cache/rollout-harness}/traefik/$VERSION/bin"
BIN="$BIN_DIR/traefik"
want="$(cat "$PROXY_DIR/go.mod" "$PROXY_DIR/go.sum" "$PROXY_DIR/build.sh" | sha256sum | cut -c1-16)"
if [[ -x "$BIN" && "$(cat "$BIN_DIR/.source-hash" 2>/dev/null)" == "$want" ]]; then
  echo "$BIN"; exit 0
fi
command -v go >/dev/null || { echo "[proxy] ERROR: go toolchain not found (needed to build Traefik $VERSION)" >&2; exit 1; }
mkdir -p "$BIN_DIR"
start=$(date +%s)
echo "[proxy] building Traefik $VERSION into $BIN_DIR (slow on 2 cores)" >&2
export CGO_ENABLED=0 GOFLAGS="-p=2 -trimpath -mod=readonly -buildvcs=false"
(cd "$PROXY_DIR" && go build -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$VERSION" \
   -o "$BIN.tmp" github.com/traefik/traefik/v3/cmd/traefik)
mv "$BIN.tmp" "$BIN"
echo "$want" > "$BIN_DIR/.source-hash"
echo "[proxy] built in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
