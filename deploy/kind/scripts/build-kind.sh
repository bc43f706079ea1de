#!/usr/bin/env bash
# Builds kind from the Go module proxy into the versioned cache (kind's own
# release binaries are not reachable here; the module is).
source "$(dirname "$0")/lib.sh"
[[ -x $KIND_BIN_DIR/kind ]] && exit 0
command -v go >/dev/null || die "go toolchain not found (needed to build kind $KIND_VERSION)"
log "building kind $KIND_VERSION from the Go module proxy into $KIND_BIN_DIR"
mkdir -p "$KIND_BIN_DIR"
CGO_ENABLED=0 GOBIN="$KIND_BIN_DIR.tmp" GOFLAGS="-p=2 -trimpath" go install "sigs.k8s.io/kind@$KIND_VERSION"
mv "$KIND_BIN_DIR.tmp/kind" "$KIND_BIN_DIR/kind"; rmdir "$KIND_BIN_DIR.tmp"
