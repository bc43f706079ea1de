#!/usr/bin/env bash
# Everything kind-e2e needs built, cached by version (no daemon, no host
# change): Debian packages, the cluster's Kubernetes build, kind, kubeadm,
# coredns, crictl, the node image and the sample app's base image. The node
# root's debootstrap (network and disk bound) runs alongside the Go builds
# (CPU bound). Prints two lines: the node image archive, the base image archive.
source "$(dirname "$0")/lib.sh"
S="$KIND_DIR/scripts"
mkdir -p "$KIND_STATE"
bash "$S/install-deps.sh" >&2
bash "$S/build-node-image.sh" rootfs > "$KIND_STATE/rootfs.log" 2>&1 &
rootfs_pid=$!
bash "$CLUSTER_DIR/scripts/build-node.sh" >&2
bash "$S/build-kind.sh" >&2
bash "$S/build-binaries.sh" >&2
wait "$rootfs_pid" || { cat "$KIND_STATE/rootfs.log" >&2; die "node root filesystem build failed"; }
rm -f "$KIND_STATE/rootfs.log"
bash "$S/build-node-image.sh"
bash "$S/build-base-image.sh"
