# Shared settings for the e2e cluster scripts (sourced, not run).
# Versions, paths and addresses live here so every script agrees on them.
set -euo pipefail

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(cd "$CLUSTER_DIR/.." && pwd)"

K8S_VERSION="v1.34.4"
ETCD_VERSION="v3.6.4"

# Build cache, shared by checkouts and kept across runs, keyed by version.
CACHE_ROOT="${ROLLOUT_HARNESS_CACHE:-$HOME/.cache/rollout-harness}/cluster"
BUILD_CACHE="$CACHE_ROOT/$K8S_VERSION"
BIN_DIR="$BUILD_CACHE/bin"
NODE_BIN="$BIN_DIR/k8s-node"

# Runtime state of this checkout's cluster (certs, configs, logs, pids, containerd).
STATE="${CLUSTER_STATE:-$REPO_DIR/.cache/cluster}"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
PKI="$STATE/pki"
KUBECONFIG_ADMIN="$STATE/kubeconfig"

# Addresses: everything inside 198.18.0.0/15 (RFC 2544 benchmarking range).
NODE_NAME="rh-node"
NODE_IF="rh-node0"          # port-less bridge holding the node IP (no dummy module here)
NODE_IP="198.18.0.1"
POD_CIDR="198.18.128.0/24"
SERVICE_CIDR="198.19.0.0/16"
SERVICE_IP_APISERVER="198.19.0.1"
BRIDGE_IF="rh-cni0"         # CNI bridge
APISERVER_PORT="16443"     # on 127.0.0.1 only
ETCD_CLIENT_PORT="23790"    # off the default 2379 so a host etcd is never touched
ETCD_PEER_PORT="23800"

CONTAINERD_SOCK="$STATE/containerd/containerd.sock"
PAUSE_IMAGE="localhost/pause:3.10"
SAMPLE_APP_IMAGE="localhost/rollout-harness-sample-app:0.1.0"
GENERATOR_IMAGE="localhost/rollout-harness-generator:0.1.0"  # harness/model/generators.py GENERATOR_IMAGE
TRAEFIK_IMAGE="localhost/rollout-harness-traefik:v3.6.12"  # proxy/go.mod pins the version
IMAGE_DIR="$BUILD_CACHE/images"

# Kernel settings the cluster changes (ours or the kubelet's/kube-proxy's);
# cluster-up records them first and cluster-down puts them back.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
         net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom kernel.panic
         kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# The daemons in start order; cluster-down stops them in reverse.
COMPONENTS=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

export PATH="$BIN_DIR:$PATH"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
