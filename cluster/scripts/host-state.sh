#!/usr/bin/env bash
# Records (before cluster-up changes anything) and restores (in cluster-down)
# the host settings the cluster touches: kernel settings, and which shared
# directories existed, so down removes only what up created.
source "$(dirname "$0")/lib.sh"
BEFORE="$STATE/host-before.env"
# /var/lib/kubelet: the device-plugin socket path is fixed in the kubelet, whatever --root-dir says.
SHARED_DIRS=(/run/containerd /var/lib/cni /var/lib/kubelet /var/log/containers /var/log/pods /run/netns)

case "${1:-}" in
  record)
    [[ -f "$BEFORE" ]] && exit 0   # keep the first record: later ones would see our changes
    mkdir -p "$STATE"
    {
      for s in "${SYSCTLS[@]}"; do
        v="$(sysctl -n "$s" 2>/dev/null)" && printf 'sysctl %s %s\n' "$s" "$v"
      done
      for d in "${SHARED_DIRS[@]}"; do [[ -e "$d" ]] && printf 'dir %s\n' "$d"; done
      for n in $(ls /run/netns 2>/dev/null); do printf 'netns %s\n' "$n"; done
      for d in /sys/fs/cgroup/*/kubepods; do [[ -d "$d" ]] && printf 'cgroup %s\n' "$d"; done
      # iptables-nft creates a table the first time a rule goes into it.
      iptables-save 2>/dev/null | sed -n 's/^\*/nft-table ip /p'
      ip6tables-save 2>/dev/null | sed -n 's/^\*/nft-table ip6 /p' 
    } > "$BEFORE.tmp"
    mv "$BEFORE.tmp" "$BEFORE"
    ;;
  had)      # had KIND VALUE -- was it there before up?
    [[ -f "$BEFORE" ]] && grep -qxF "$2 $3" "$BEFORE"
    ;;
  restore)
    [[ -f "$BEFORE" ]] || exit 0
    while read -r kind name value; do
      if [[ "$kind" == sysctl ]]; then
        [[ "$(sysctl -n "$name" 2>/dev/null)" == "$value" ]] || sysctl -qw "$name=$value" || true
      fi
    done < "$BEFORE"
    # nftables tables iptables-nft created for us, if they hold no rule now.
    if command -v nft >/dev/null; then
      for family in ip ip6; do
        save=iptables-save; [[ $family == ip6 ]] && save=ip6tables-save
        for t in $($save 2>/dev/null | sed -n 's/^\*//p'); do
          grep -qxF "nft-table $family $t" "$BEFORE" && continue
          [[ -z "$($save -t "$t" 2>/dev/null | grep -E '^-A|^:[A-Z0-9_-]+ - ' | grep -vE '^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) ' || true)" ]] \
            && nft delete table "$family" "$t" 2>/dev/null || true
        done
      done
    fi
    for d in "${SHARED_DIRS[@]}"; do
      if [[ -e "$d" ]] && ! grep -qxF "dir $d" "$BEFORE"; then
        # /run/netns may hold others' namespaces by now: remove it only if empty.
        # iproute2 also bind-mounts it onto itself (shared propagation).
        if [[ "$d" == /run/netns ]]; then
          if [[ -z "$(ls -A "$d")" ]]; then
            while mountpoint -q "$d"; do umount "$d" || break; done
            rmdir "$d" 2>/dev/null || true
          fi
        else rm -rf "$d"; fi
      fi
    done
    rm -f "$BEFORE"
    ;;
  *) die "usage: host-state.sh record|had KIND VALUE|restore" ;;
esac
