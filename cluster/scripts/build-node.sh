#!/usr/bin/env bash
# Builds k8s-node (kube-apiserver, controller-manager, scheduler, kubelet,
# kube-proxy, kubectl and etcd in one binary) and the pause binary into the
# versioned build cache. A warm cache whose source hash matches is reused.
source "$(dirname "$0")/lib.sh"

src_hash() {
  cat "$CLUSTER_DIR"/node/go.mod "$CLUSTER_DIR"/node/go.sum "$CLUSTER_DIR"/node/*.go \
      "$CLUSTER_DIR"/pause/*.go "$CLUSTER_DIR"/pause/go.mod | sha256sum | cut -c1-16
}

want="$(src_hash)"
if [[ -x "$NODE_BIN" && -x "$BIN_DIR/pause" && "$(cat "$BIN_DIR/.source-hash" 2>/dev/null)" == "$want" ]]; then
  log "binaries up to date in $BIN_DIR"
  exit 0
fi

command -v go >/dev/null || die "go toolchain not found (needed to build Kubernetes $K8S_VERSION)"
mkdir -p "$BIN_DIR"
export CGO_ENABLED=0 GOFLAGS="-p=2 ${GOFLAGS:-} -trimpath -mod=readonly -buildvcs=false"
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

start=$(date +%s)
log "building k8s-node ($K8S_VERSION + etcd $ETCD_VERSION) into $BIN_DIR (slow on 2 cores)"
(cd "$CLUSTER_DIR/node" && go build -tags providerless -ldflags "$ldflags" -o "$NODE_BIN.tmp" .)
mv "$NODE_BIN.tmp" "$NODE_BIN"
(cd "$CLUSTER_DIR/pause" && go build -ldflags "-s -w" -o "$BIN_DIR/pause.tmp" .)
mv "$BIN_DIR/pause.tmp" "$BIN_DIR/pause"
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd; do
  ln -sf k8s-node "$BIN_DIR/$c"
done
echo "$want" > "$BIN_DIR/.source-hash"
log "built in $(( $(date +%s) - start )) s"
