#!/usr/bin/env bash
# cluster-verify: the whole promise in one run. Snapshot the host, cluster-up
# (timed), the acceptance check (4 replicas, rollout restart, all 4 pods answer
# on 127.0.0.1), cluster-down with those pods still running (timed), then
# compare the host with the snapshot and list leftovers. Exit 0 only if all hold.
source "$(dirname "$0")/lib.sh"
snap="$(mktemp -d)"
snapshot() {
  local d="$snap/$1"; mkdir -p "$d"
  set +e +o pipefail   # an empty listing (no tables, no netns) is a fine answer
  # volatile or self-inflicted entries are left out of the kernel settings
  sysctl -a 2>/dev/null | grep -vE 'random|inode-nr|inode-state|dentry-state|file-nr|stat_refresh|ns_last_pid|sched_domain|nf_conntrack_count|perf_event_max|fs\.quota|kernel\.pty\.nr|tainted|hung_task' > "$d/sysctl"
  iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9:]*\]//' > "$d/iptables"
  ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9:]*\]//' > "$d/ip6tables"
  awk '{print $5, $9}' /proc/self/mountinfo | sort > "$d/mounts"
  ip -o link show | awk -F': ' '{print $2}' | sort > "$d/links"
  ls /run/netns 2>/dev/null | sort > "$d/netns"
  set -e -o pipefail
}
[[ -z "$(pgrep -f "k8s-node kube-apiserver" || true)" ]] || bash "$CLUSTER_DIR/scripts/down.sh"
snapshot before
t=$(date +%s); bash "$CLUSTER_DIR/scripts/up.sh" || { bash "$CLUSTER_DIR/scripts/down.sh"; echo "[verify] cluster-up failed"; exit 1; }; up_s=$(( $(date +%s) - t ))
acc=0; ACCEPTANCE_KEEP=1 KUBECTL="$BIN_DIR/kubectl" python3 "$CLUSTER_DIR/scripts/acceptance.py" || acc=$?
t=$(date +%s); down_rc=0; bash "$CLUSTER_DIR/scripts/down.sh" || down_rc=$?; down_s=$(( $(date +%s) - t ))
snapshot after
rc=$acc
(( down_rc == 0 )) || { echo "[verify] cluster-down exited $down_rc"; rc=1; }
for f in sysctl iptables ip6tables mounts links netns; do
  if ! diff -u "$snap/before/$f" "$snap/after/$f" > "$snap/$f.diff"; then
    echo "[verify] host changed ($f):"; cat "$snap/$f.diff"; rc=1
  fi
done
bash "$CLUSTER_DIR/scripts/leftovers.sh" || rc=1
rm -rf "$snap"
echo "[verify] cluster-up ${up_s} s, cluster-down ${down_s} s, acceptance $([[ $acc == 0 ]] && echo PASS || echo FAIL), host $([[ $rc == 0 ]] && echo 'as found' || echo CHANGED)"
exit $rc
