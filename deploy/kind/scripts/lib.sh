# Shared settings for the kind setup scripts (sourced, not run): versions,
# cache and state paths, and the private dockerd's socket. The Kubernetes
# version and its build cache come from the project's cluster (cluster/).
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../cluster/scripts" && pwd)/lib.sh"

KIND_DIR="$REPO_DIR/deploy/kind"
KIND_VERSION="v0.33.0"
CRICTL_VERSION="v1.34.0"
COREDNS_VERSION="v1.12.1"            # what kubeadm v1.34 deploys (constants.CoreDNSVersion)
ETCD_IMAGE_TAG="3.6.5-0"             # kubeadm v1.34's default etcd tag (holds the cluster's etcd build)
PAUSE_IMAGE_TAG="3.10.1"             # kubeadm v1.34's pause tag

# Build cache of the kind work, shared by checkouts, keyed by version.
KIND_CACHE="${ROLLOUT_HARNESS_CACHE:-$HOME/.cache/rollout-harness}/kind"
KIND_BIN_DIR="$KIND_CACHE/$KIND_VERSION/bin"
NODE_CACHE="$KIND_CACHE/node-$K8S_VERSION"
NODE_IMAGE="localhost/rollout-harness-kind-node:$K8S_VERSION"
BASE_IMAGE="python:3.11-slim"        # what sample-app/Dockerfile starts FROM
# dockerd's data root (images, volumes) is kept across runs so a warm run does not reload images.
DOCKER_DATA="$KIND_CACHE/docker-data"

# Runtime state of this checkout's dockerd (socket, pid, exec root, logs, host record).
KIND_STATE="${KIND_STATE:-$REPO_DIR/.cache/kind}"
DOCKER_SOCK="$KIND_STATE/docker.sock"
DOCKER_PID="$KIND_STATE/docker.pid"
export DOCKER_HOST="unix://$DOCKER_SOCK"
export PATH="$KIND_BIN_DIR:$PATH"

log() { printf '[kind] %s\n' "$*" >&2; }
die() { printf '[kind] ERROR: %s\n' "$*" >&2; exit 1; }

# The Debian mirror this machine's apt already uses (never a hard-coded host).
debian_mirror() {
  local uri
  uri="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [[ -n "$uri" ]] || uri="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d} for debootstrap"
  echo "$uri"
}

# go_build MODULE_DIR OUT [PKG] -- a static build into the cache, sharing the Go build cache.
go_build() {
  command -v go >/dev/null || die "go toolchain not found"
  local out="$2"; mkdir -p "$(dirname "$out")"
  (cd "$1" && CGO_ENABLED=0 GOFLAGS="-p=2 ${GOFLAGS:-} -trimpath -buildvcs=false" \
     go build -ldflags "${GO_LDFLAGS:--s -w}" -o "$out.tmp" "${3:-.}") && mv "$out.tmp" "$out"
}
