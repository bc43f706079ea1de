#!/usr/bin/env bash
# Builds the project's kind node image as a docker-archive in the cache:
#   - a debootstrap bookworm root (systemd 252: trixie's 257 refuses this
#     host's cgroup v1) with containerd, runc and the CNI plugins from Debian;
#   - kubelet/kubectl (the cluster's k8s-node build), kubeadm and crictl;
#   - deploy/kind/node-image/files: entrypoint, units, containerd config,
#     /kind/manifests (stand-in CNI, storage class);
#   - the images kubeadm and the stand-in CNI run, already in the node's
#     containerd under the tags kubeadm expects, so nothing is ever pulled.
# Every output is keyed by a hash of its inputs; a warm cache does nothing.
# Prints the archive path on stdout.
source "$(dirname "$0")/lib.sh"
ARCHIVE="$CLUSTER_DIR/images/image_archive.py"
FILES="$KIND_DIR/node-image/files"
BIN="$NODE_CACHE/bin"
IMAGES="$NODE_CACHE/images"
PACKAGES="systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,iproute2,conntrack,socat,ca-certificates,kmod,util-linux,mount,procps,busybox-static,libseccomp2"
ROOTFS_TAR="$NODE_CACHE/rootfs-$(echo "$PACKAGES" | sha256sum | cut -c1-12).tar"
mkdir -p "$NODE_CACHE" "$IMAGES"

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

build_rootfs() {
  [[ -s $ROOTFS_TAR ]] && return 0
  local dir="$NODE_CACHE/rootfs-work" start=$(date +%s)
  rm -rf "$dir"
  log "debootstrap bookworm (systemd, containerd, runc, CNI plugins, iptables) -> $ROOTFS_TAR"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$dir" "$(debian_mirror)" \
    > "$NODE_CACHE/debootstrap.log" 2>&1 || die "debootstrap failed; log: $NODE_CACHE/debootstrap.log"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar --numeric-owner --xattrs -C "$dir" -cf "$ROOTFS_TAR.partial" . && mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  rm -rf "$dir"
  log "node rootfs built in $(( $(date +%s) - start )) s"
}

# copy_with_libs ROOT DEST FILE... -- FILE (a path inside ROOT) and the shared libraries it loads.
copy_with_libs() {
  local root="$1" dest="$2"; shift 2
  local f lib
  for f in "$@"; do
    mkdir -p "$dest$(dirname "$f")"; cp -a "$root$f" "$dest$f"
    for lib in $(chroot "$root" ldd "$f" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*'); do
      [[ -e "$dest$lib" ]] && continue
      mkdir -p "$dest$(dirname "$lib")"; cp -L "$root$lib" "$dest$lib"
    done
  done
}

# write_image DIR TAG ENTRYPOINT OUT -- one docker-archive (see cluster/images/image_archive.py)
write_image() {
  [[ -s "$4" ]] || python3 "$ARCHIVE" --rootfs "$1" --tag "$2" --entrypoint "$3" \
    --env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin --out "$4"
}

# The images kubeadm (and the stand-in CNI) run, as archives, listed in $IMAGES/list.
build_images() {
  local root="$1" key; key="$(hash_of "$NODE_BIN" "$BIN/coredns" "$BIN_DIR/pause" /bin/busybox "$0" "$ARCHIVE")"
  local out="$IMAGES/$key"
  [[ -f "$out/list" ]] && { echo "$out"; return 0; }
  rm -rf "$out"; mkdir -p "$out"
  local layer; layer="$(mktemp -d)"
  # One layer for the control plane, kube-proxy and etcd: the cluster's
  # multi-call binary under every component's name, and the iptables (nft)
  # userland kube-proxy calls. Identical layers are stored once.
  mkdir -p "$layer"/{dev,proc,sys,etc,tmp,run,var/run,usr/local/bin}
  install -m 0755 "$NODE_BIN" "$layer/usr/local/bin/k8s-node"
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl etcd; do
    ln -s k8s-node "$layer/usr/local/bin/$c"
  done
  copy_with_libs "$root" "$layer" /usr/sbin/xtables-nft-multi
  # iptables' extensions (-m comment, conntrack, mark...) are loaded at run time
  copy_with_libs "$root" "$layer" $(cd "$root" && ls usr/lib/x86_64-linux-gnu/xtables/*.so | sed 's|^|/|')
  for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -s xtables-nft-multi "$layer/usr/sbin/$c"
  done
  touch "$layer"/etc/{resolv.conf,hostname,hosts}
  echo 'hosts: files dns' > "$layer/etc/nsswitch.conf"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    write_image "$layer" "registry.k8s.io/$c:$K8S_VERSION" "[\"/usr/local/bin/$c\"]" "$out/$c.tar"
  done
  write_image "$layer" "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" '["/usr/local/bin/etcd"]' "$out/etcd.tar"
  rm -rf "$layer"
  # CoreDNS, the pause binary, and busybox for the stand-in CNI agent.
  for c in coredns pause standin-cni; do
    layer="$(mktemp -d)"; mkdir -p "$layer"/{dev,proc,sys,etc,tmp}
    touch "$layer"/etc/{resolv.conf,hostname,hosts}
    case $c in
      coredns) install -m 0755 "$BIN/coredns" "$layer/coredns"
        write_image "$layer" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" '["/coredns"]' "$out/$c.tar" ;;
      pause) install -m 0755 "$BIN_DIR/pause" "$layer/pause"
        write_image "$layer" "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" '["/pause"]' "$out/$c.tar" ;;
      standin-cni) mkdir -p "$layer/bin"; install -m 0755 /bin/busybox "$layer/bin/busybox"
        for a in sh nsenter sleep cat; do ln -s busybox "$layer/bin/$a"; done
        write_image "$layer" "localhost/rollout-harness-standin-cni:0.1.0" '["/bin/sh"]' "$out/$c.tar" ;;
    esac
    rm -rf "$layer"
  done
  ls "$out"/*.tar > "$out/list"
  echo "$out"
}

# preload ROOT IMAGEDIR -- import the archives into ROOT/var/lib/containerd (k8s.io
# namespace, not unpacked: the CRI unpacks an image on first use) with a
# throwaway containerd of the same version as the node's.
preload() {
  local root="$1" dir="$2" work; work="$(mktemp -d /tmp/rh-kind-ctr.XXXXXX)"
  cat > "$work/config.toml" <<TOML
version = 2
root = "$root/var/lib/containerd"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/c.sock"
TOML
  containerd --config "$work/config.toml" > "$work/log" 2>&1 &
  local pid=$! ok=""
  for _ in $(seq 1 60); do ctr -a "$work/c.sock" version >/dev/null 2>&1 && { ok=1; break; }; sleep 0.5; done
  [[ -n $ok ]] || { kill $pid; cat "$work/log" >&2; die "temporary containerd did not start"; }
  local f rc=0
  for f in $(cat "$dir/list"); do
    ctr -a "$work/c.sock" -n k8s.io images import --no-unpack "$f" >/dev/null || { rc=1; break; }
  done
  ctr -a "$work/c.sock" -n k8s.io images ls -q | sed 's/^/[kind]   preloaded /' >&2
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$work"
  (( rc == 0 )) || die "ctr import of $f failed"
}

build_node() {
  build_rootfs
  [[ -x $NODE_BIN && -x $BIN_DIR/pause ]] || die "cluster binaries missing in $BIN_DIR: run cluster/scripts/build-node.sh"
  local imgs key out
  local root="$NODE_CACHE/node-work"; rm -rf "$root"; mkdir -p "$root"
  tar -C "$root" -xf "$ROOTFS_TAR"
  imgs="$(build_images "$root")"
  key="$(hash_of "$ROOTFS_TAR" "$NODE_BIN" "$BIN/kubeadm" "$BIN/crictl" "$imgs/list" "$0" "$ARCHIVE" \
         <(cd "$FILES" && find . -type f -print0 | sort -z | xargs -0 sha256sum))"
  out="$NODE_CACHE/node-$key.tar"
  if [[ -s $out ]]; then rm -rf "$root"; echo "$out"; return 0; fi
  local start=$(date +%s)
  log "assembling the node image $NODE_IMAGE"
  install -m 0755 "$NODE_BIN" "$root/usr/local/bin/k8s-node"
  ln -sf /usr/local/bin/k8s-node "$root/usr/bin/kubelet"
  ln -sf /usr/local/bin/k8s-node "$root/usr/bin/kubectl"
  install -m 0755 "$BIN/kubeadm" "$root/usr/bin/kubeadm"
  install -m 0755 "$BIN/crictl" "$root/usr/local/bin/crictl"
  cp -a "$FILES/." "$root/"
  echo "$K8S_VERSION" > "$root/kind/version"
  mkdir -p "$root/opt/cni" "$root/etc/cni/net.d" "$root/var/lib/kubelet"
  ln -sfn /usr/lib/cni "$root/opt/cni/bin"
  chroot "$root" systemctl enable containerd.service kubelet.service >/dev/null 2>&1
  # systemd-in-a-container: nothing waits for ttys, and no unit needs a real machine
  chroot "$root" systemctl mask getty.target systemd-udevd.service systemd-modules-load.service \
    systemd-remount-fs.service systemd-firstboot.service >/dev/null 2>&1
  # systemd-sysctl in a privileged node writes the host's /proc/sys for every
  # setting that is not per network namespace: only the node's own file stays
  rm -f "$root"/usr/lib/sysctl.d/*.conf "$root"/etc/sysctl.d/99-sysctl.conf
  preload "$root" "$imgs"
  python3 "$ARCHIVE" --rootfs "$root" --tag "$NODE_IMAGE" \
    --entrypoint '["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env container=docker \
    --out "$out"
  rm -rf "$root"
  for f in "$NODE_CACHE"/node-*.tar; do [[ $f == "$out" ]] || rm -f "$f"; done
  log "node image built in $(( $(date +%s) - start )) s: $out"
  echo "$out"
}

case "${1:-all}" in
  rootfs) build_rootfs ;;
  all) build_node ;;
  *) die "usage: build-node-image.sh [rootfs|all]" ;;
esac
