#!/usr/bin/env bash
# cluster-down: stops every daemon cluster-up started (by pid file), kills the
# pods' processes, and removes what the cluster added to the host: network
# namespaces, interfaces, mounts, cgroups, iptables chains/rules (KUBE-*,
# CNI-*), kernel settings and shared directories it created. Idempotent: safe
# to run with nothing up, or after a crash half-way through cluster-up.
source "$(dirname "$0")/lib.sh"
source "$CLUSTER_DIR/scripts/daemons.sh"
[[ $EUID -eq 0 ]] || die "cluster-down needs root"
# Teardown is best effort: one step failing (a cgroup vanishing mid-walk, a
# rule already gone) must not stop the steps after it.
set +e
HOST_STATE="$CLUSTER_DIR/scripts/host-state.sh"
ctr_() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

for c in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver; do stop "$c"; done

# Pod network namespaces, read from the CRI sandboxes while containerd still runs.
sandbox_netns=()
containerd_clean=0
if alive containerd; then
  mapfile -t sandbox_netns < <(ctr_ containers ls -q 2>/dev/null | while read -r id; do
      ctr_ containers info "$id" 2>/dev/null | python3 -c '
import json, sys
spec = json.load(sys.stdin).get("Spec") or {}
for ns in (spec.get("linux") or {}).get("namespaces") or []:
    if ns.get("type") == "network" and ns.get("path", "").startswith("/var/run/netns/"):
        print(ns["path"].rsplit("/", 1)[1])' 2>/dev/null
    done | sort -u)
fi

# Kill every process in the kubelet's pod cgroups (the containers and pause).
kill_pod_cgroups() {
  local d pids
  for d in /sys/fs/cgroup/*/kubepods; do
    [[ -d "$d" ]] || continue
    bash "$HOST_STATE" had cgroup "$d" && continue
    pids="$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)"
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
  done
}
kill_pod_cgroups

if alive containerd; then
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$id" >/dev/null 2>&1 || true; done
  [[ -z "$(ctr_ containers ls -q 2>/dev/null)" ]] && containerd_clean=1
fi
stop containerd

# Shims of our containerd (matched by its socket path) that outlived it.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null); do
  kill -KILL "$pid" 2>/dev/null || true
done
stop etcd
kill_pod_cgroups

# Mounts under our state dir (rootfs overlays, shm, kubelet volumes), deepest first.
umount_under() {
  local mp
  awk -v p="$1" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | awk '{print length, $0}' \
    | sort -rn | cut -d' ' -f2- | while read -r mp; do
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "could not unmount $mp"
    done
}
umount_under "$STATE/"

# Leftovers of a cluster from another checkout whose daemons were killed without
# cluster-down (e.g. a session ended): its shims and mounts sit under
# <checkout>/.cache/cluster. Only state dirs whose containerd no longer answers.
foreign_states() {
  { pgrep -af 'containerd-shim-runc-v2' | grep -o -- '-address [^ ]*/\.cache/cluster/containerd/containerd\.sock' \
      | sed 's|^-address ||; s|/containerd/containerd\.sock$||'
    awk '{print $5}' /proc/self/mountinfo | grep -o '^.*/\.cache/cluster/' | sed 's|/$||'
  } | sort -u | grep -vxF "$STATE"
}
for other in $(foreign_states); do
  timeout 5 ctr -a "$other/containerd/containerd.sock" version >/dev/null 2>&1 && continue
  log "cleaning leftovers of a dead cluster in $other"
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $other/containerd/containerd.sock"); do kill -KILL "$pid"; done
  umount_under "$other/"
  # Its record of the host as it found it is the true one: put that back, not ours.
  if [[ -f "$other/host-before.env" ]]; then
    mkdir -p "$STATE" && mv -f "$other/host-before.env" "$STATE/host-before.env"
  fi
done

# Network namespaces: the sandboxes' and any cni-* one that was not there before up.
for n in "${sandbox_netns[@]}" $(ls /run/netns 2>/dev/null | grep '^cni-' || true); do
  bash "$HOST_STATE" had netns "$n" && continue
  # Not `ip netns delete`: it first bind-mounts /run/netns onto itself, which
  # hides containerd's nsfs mounts underneath and makes them unremovable.
  [[ -e "/run/netns/$n" ]] || continue
  while mountpoint -q "/run/netns/$n"; do umount "/run/netns/$n" 2>/dev/null || umount -l "/run/netns/$n" 2>/dev/null || break; done
  rm -f "/run/netns/$n" 2>/dev/null || log "could not remove netns $n"
done

# Interfaces: veths still on the CNI bridge, the bridge, the node-IP interface.
if ip link show "$BRIDGE_IF" >/dev/null 2>&1; then
  for l in $(ip -o link show master "$BRIDGE_IF" | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$l" 2>/dev/null || true; done
  ip link del "$BRIDGE_IF" 2>/dev/null || true
fi
ip link del "$NODE_IF" 2>/dev/null || true

# iptables (both families, every table): rules jumping to KUBE-*/CNI-*, then those chains.
clean_iptables() {
  local ipt="$1" table rule chain
  command -v "$ipt" >/dev/null || return 0
  for table in filter nat mangle raw; do
    "$ipt" -w -t "$table" -S >/dev/null 2>&1 || continue
    "$ipt" -w -t "$table" -S | awk '$1 == "-A" && $2 !~ /^(KUBE|CNI)-/ && / -[jg] (KUBE|CNI)-/' \
      | while read -r rule; do
        eval "\"$ipt\" -w -t \"$table\" -D ${rule#-A }" 2>/dev/null || true
      done
    for chain in $("$ipt" -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}'); do
      "$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$ipt" -w -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}'); do
      "$ipt" -w -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}
clean_iptables iptables
clean_iptables ip6tables

# Pod cgroups the kubelet created (cgroup v1: one tree per controller).
for d in /sys/fs/cgroup/*/kubepods; do
  [[ -d "$d" ]] || continue
  bash "$HOST_STATE" had cgroup "$d" && continue
  find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "cgroup $d still busy"
done

# The kubelet links container logs into /var/log/containers; drop links to our pods.
find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
bash "$HOST_STATE" restore

# Runtime state: a fresh etcd and kubelet each time; containerd's image store is
# kept (faster warm up) only when every container was removed cleanly.
rm -rf "$STATE/etcd" "$STATE/kubelet" "$STATE/pod-logs" "$STATE/runc" "$STATE/cni/ipam" \
       "$STATE/containerd/state" "$PIDS"
(( containerd_clean )) || rm -rf "$STATE/containerd/root"
log "cluster down (logs kept in $LOGS)"
