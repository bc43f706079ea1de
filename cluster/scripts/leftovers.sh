#!/usr/bin/env bash
# Lists anything the e2e cluster may leave on the host: processes, mounts,
# network namespaces, interfaces, iptables chains/rules, pod cgroups. Exits 1
# if something is left (run after `make cluster-down`; used by cluster-verify).
source "$(dirname "$0")/lib.sh"
found=0
report() { if [[ -n "$2" ]]; then printf '[leftover] %s:\n%s\n' "$1" "$2" | sed '3,$s/^/  /'; found=1; fi; }

# Zombies (state Z) are skipped: they hold nothing, and init reaps them within seconds.
report processes "$(ps -eo pid,stat,args | awk -v s="$STATE" '$2 !~ /^Z/ && (index($0, s) || /k8s-node|containerd-shim|\/pause$|\/app\/app\.py/)' | grep -v -e awk -e leftovers.sh || true)"
report mounts "$(awk -v s="$STATE" 'index($5, s) == 1 || $5 ~ /^\/run\/netns/ || $5 ~ /kubepods/ {print $5}' /proc/self/mountinfo)"
report netns "$(ls /run/netns 2>/dev/null | grep '^cni-' || true)"
report interfaces "$(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^($NODE_IF|$BRIDGE_IF|veth)" || true)"
report iptables "$(iptables-save 2>/dev/null | grep -E '(KUBE|CNI)-' || true)"
report ip6tables "$(ip6tables-save 2>/dev/null | grep -E '(KUBE|CNI)-' || true)"
report cgroups "$(ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null || true)"
report directories "$(ls -d /run/containerd /var/lib/cni /var/lib/kubelet /var/log/containers /var/log/pods 2>/dev/null || true)"
(( found == 0 )) && log "no leftovers: processes, mounts, netns, interfaces, iptables, cgroups all clean"
exit $found
