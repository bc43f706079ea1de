#!/usr/bin/env bash
# Host snapshot for kind-e2e: what dockerd and kind can change on this host
# (kernel settings, iptables/nftables, mounts, links, network namespaces and
# the few paths they create), written before setup and compared after
# teardown. `compare` prints a diff per item and exits 1 when anything differs.
#   host-snapshot.sh save DIR      host-snapshot.sh compare BEFORE AFTER
source "$(dirname "$0")/lib.sh"
# Paths dockerd or kind create when missing (kind bind-mounts /lib/modules).
PATHS=(/lib/modules /var/lib/docker /var/run/docker.sock /run/docker /etc/docker /var/lib/kind /etc/cni/net.d)
ITEMS=(sysctl iptables ip6tables nft mounts links routes netns paths)

save() {
  local d="$1"; mkdir -p "$d"
  set +e +o pipefail   # an empty listing is a fine answer
  # volatile counters are left out of the kernel settings
  sysctl -a 2>/dev/null | grep -vE 'random|inode-nr|inode-state|dentry-state|file-nr|stat_refresh|ns_last_pid|sched_domain|nf_conntrack_count|perf_event_max|fs\.quota|kernel\.pty\.nr|tainted|hung_task|net\.netfilter\.nf_conntrack_(count|buckets)' > "$d/sysctl"
  iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9:]*\]//' > "$d/iptables"
  ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9:]*\]//' > "$d/ip6tables"
  nft list tables 2>/dev/null | sort > "$d/nft"
  awk '{print $5, $9}' /proc/self/mountinfo | sort > "$d/mounts"
  ip -o link show | awk -F': ' '{print $2}' | sort > "$d/links"
  ip route show table all 2>/dev/null | grep -vE '^(local|broadcast) .* table local' | sort > "$d/routes"
  ls /run/netns 2>/dev/null | sort > "$d/netns"
  for p in "${PATHS[@]}"; do [[ -e $p ]] && echo "$p"; done > "$d/paths"
  set -e -o pipefail
}

compare() {
  local rc=0 f
  for f in "${ITEMS[@]}"; do
    if ! diff -u "$1/$f" "$2/$f" > "$2/$f.diff"; then
      echo "[kind] host changed ($f):"; cat "$2/$f.diff"; rc=1
    fi
  done
  (( rc == 0 )) && log "host as found (${ITEMS[*]})"
  return $rc
}

case "${1:-}" in
  save) save "$2" ;;
  compare) compare "$2" "$3" ;;
  *) die "usage: host-snapshot.sh save DIR | compare BEFORE AFTER" ;;
esac
