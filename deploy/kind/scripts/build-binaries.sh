#!/usr/bin/env bash
# Builds the Go binaries the kind node image needs beyond the cluster's own
# build (cluster/scripts/build-node.sh: kubelet, kubectl, control plane, etcd,
# pause), from the Go module proxy into the versioned cache:
#   kubeadm  deploy/kind/node (k8s.io/kubernetes $K8S_VERSION)
#   coredns  deploy/kind/coredns (CoreDNS $COREDNS_VERSION, the plugins kubeadm's Corefile uses)
#   crictl   sigs.k8s.io/cri-tools $CRICTL_VERSION (kind load and kubeadm use it)
# Each is keyed by a hash of its sources, so a warm cache does nothing.
#   build-binaries.sh [kubeadm|coredns|crictl|all]
source "$(dirname "$0")/lib.sh"
BIN="$NODE_CACHE/bin"
mkdir -p "$BIN"

fresh() {  # fresh NAME HASH -- is the cached binary built from these sources?
  [[ -x "$BIN/$1" && "$(cat "$BIN/.$1.hash" 2>/dev/null)" == "$2" ]]
}

build_kubeadm() {
  local want; want="$(cat "$KIND_DIR"/node/go.mod "$KIND_DIR"/node/go.sum "$KIND_DIR"/node/*.go | sha256sum | cut -c1-16)"
  fresh kubeadm "$want" && return 0
  local minor="${K8S_VERSION#v1.}" ldflags="-s -w" pkg start=$(date +%s); minor="${minor%%.*}"
  # kubeadm compares its own version with the cluster's: the same stamp as the cluster build
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  log "building kubeadm $K8S_VERSION (deploy/kind/node)"
  # -tags providerless as the cluster build, so the shared Go build cache serves the common packages
  GOFLAGS="-mod=readonly -tags=providerless" GO_LDFLAGS="$ldflags" go_build "$KIND_DIR/node" "$BIN/kubeadm"
  echo "$want" > "$BIN/.kubeadm.hash"
  log "kubeadm built in $(( $(date +%s) - start )) s"
}

build_coredns() {
  local want; want="$(cat "$KIND_DIR"/coredns/go.mod "$KIND_DIR"/coredns/go.sum "$KIND_DIR"/coredns/*.go | sha256sum | cut -c1-16)"
  fresh coredns "$want" && return 0
  local start=$(date +%s)
  log "building coredns $COREDNS_VERSION (deploy/kind/coredns)"
  GOFLAGS="-mod=readonly" go_build "$KIND_DIR/coredns" "$BIN/coredns"
  echo "$want" > "$BIN/.coredns.hash"
  log "coredns built in $(( $(date +%s) - start )) s"
}

build_crictl() {
  fresh crictl "$CRICTL_VERSION" && return 0
  local start=$(date +%s) tmp="$BIN/.crictl-gobin"
  log "building crictl $CRICTL_VERSION from the Go module proxy"
  CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-p=2 -trimpath" go install -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  mv "$tmp/crictl" "$BIN/crictl"; rmdir "$tmp"
  echo "$CRICTL_VERSION" > "$BIN/.crictl.hash"
  log "crictl built in $(( $(date +%s) - start )) s"
}

case "${1:-all}" in
  kubeadm) build_kubeadm ;;
  coredns) build_coredns ;;
  crictl) build_crictl ;;
  all) build_kubeadm; build_coredns; build_crictl ;;
  *) die "usage: build-binaries.sh [kubeadm|coredns|crictl|all]" ;;
esac
