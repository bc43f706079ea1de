#!/usr/bin/env bash
# Starts and stops a private dockerd for kind, by hand (no systemd here):
# its own data root (cached), exec root, pidfile, socket and config file, so
# it never meets another docker on the machine. Its default OCI runtime is
# runc-caps (see that file: privileged containers need it on this host).
#   dockerd.sh start   record the host settings dockerd changes, start it, wait for the API
#   dockerd.sh stop    remove what it holds (containers, networks), stop it, and undo
#                      its host changes: docker0 and kind bridges, DOCKER* iptables
#                      chains and the rules that jump to them, FORWARD policy,
#                      kernel settings, /lib/modules if kind's bind mount created it
#   dockerd.sh env     print the export line for DOCKER_HOST and PATH
source "$(dirname "$0")/lib.sh"
RECORD="$KIND_STATE/dockerd-host-before.env"
SYSCTL_BEFORE="$KIND_STATE/dockerd-sysctl-before"
# Every kernel setting is recorded and put back: dockerd changes some (ip_forward,
# bridge netfilter), and so do processes in a privileged kind node, where /proc/sys
# is the host's for every setting that is not per network namespace: systemd as
# PID 1 raises fs.file-max and fs.nr_open, the kubelet sets vm.overcommit_memory,
# kernel.panic*, kernel.keys.*. Volatile counters are left out.
sysctl_values() {
  sysctl -a 2>/dev/null | grep -vE 'random|inode-nr|inode-state|dentry-state|file-nr|stat_refresh|ns_last_pid|sched_domain|nf_conntrack_count|perf_event_max|fs\.quota|kernel\.pty\.nr|tainted|hung_task|nf_conntrack_buckets' || true
}
restore_sysctls() {
  [[ -f $SYSCTL_BEFORE ]] || return 0
  local pass line name value
  # two passes: some settings move others (ip_forward resets accept_redirects)
  for pass in 1 2; do
    while IFS= read -r line; do
      name="${line%% = *}"; value="${line#* = }"
      sysctl -qw "$name=$value" 2>/dev/null || true
    done < <(comm -23 <(sort "$SYSCTL_BEFORE") <(sysctl_values | sort))
  done
  rm -f "$SYSCTL_BEFORE"
}

running() { [[ -f $DOCKER_PID ]] && kill -0 "$(cat "$DOCKER_PID")" 2>/dev/null; }

record() {
  [[ -f $RECORD ]] && return 0   # keep the first record: a later one would see our changes
  mkdir -p "$KIND_STATE"
  {
    printf 'policy FORWARD %s\n' "$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}')"
    for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do printf 'link %s\n' "$l"; done
    iptables-save 2>/dev/null | sed -n 's/^\*/table /p'
    for p in /lib/modules /run/docker; do [[ -e $p ]] && echo "path $p"; done
  } > "$RECORD.tmp"
  mv "$RECORD.tmp" "$RECORD"
  sysctl_values > "$SYSCTL_BEFORE"
}

start() {
  if running; then log "dockerd already running (pid $(cat "$DOCKER_PID"))"; return 0; fi
  command -v dockerd >/dev/null || die "dockerd not found: run deploy/kind/scripts/install-deps.sh"
  record
  mkdir -p "$KIND_STATE/exec" "$DOCKER_DATA"
  echo '{}' > "$KIND_STATE/daemon.json"
  log "starting dockerd (data root $DOCKER_DATA, socket $DOCKER_SOCK)"
  # setsid: the daemon outlives this script; stop finds it by its pidfile.
  setsid dockerd --config-file "$KIND_STATE/daemon.json" --data-root "$DOCKER_DATA" \
    --exec-root "$KIND_STATE/exec" --pidfile "$DOCKER_PID" -H "unix://$DOCKER_SOCK" \
    --add-runtime "rh-runc=$KIND_DIR/scripts/runc-caps" --default-runtime rh-runc \
    --storage-driver overlay2 --log-level warn \
    > "$KIND_STATE/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    docker version >/dev/null 2>&1 && { log "dockerd up ($(docker version -f '{{.Server.Version}} API {{.Server.APIVersion}}'))"; return 0; }
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  tail -20 "$KIND_STATE/dockerd.log" >&2
  stop || true
  die "dockerd did not answer on $DOCKER_SOCK; log: $KIND_STATE/dockerd.log"
}

# delete_rules TABLE -- rules that mention docker's chains or bridges, then its chains.
delete_rules() {
  local t="$1" line chain
  { iptables-save -t "$t" 2>/dev/null | grep '^-A' | grep -vE '^-A DOCKER' \
    | grep -E 'DOCKER|docker0|br-[0-9a-f]{12}' || true; } | while IFS= read -r line; do
      eval "iptables -t $t -D ${line#-A }" || true
    done
  for chain in $(iptables-save -t "$t" 2>/dev/null | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do
    iptables -t "$t" -F "$chain" 2>/dev/null || true
  done
  for chain in $(iptables-save -t "$t" 2>/dev/null | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do
    iptables -t "$t" -X "$chain" 2>/dev/null || true
  done
}

undo_host() {
  [[ -f $RECORD ]] || return 0
  local kind name value l t
  for t in filter nat mangle raw; do delete_rules "$t"; done
  for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $l == docker0 || $l =~ ^br-[0-9a-f]{12}$ || $l =~ ^veth[0-9a-f]{7}$ ]] || continue
    grep -qxF "link $l" "$RECORD" || ip link del "$l" 2>/dev/null || true
  done
  while read -r kind name value; do
    case "$kind" in
      policy) [[ -n $value ]] && iptables -P "$name" "$value" ;;
    esac
  done < "$RECORD"
  # nftables tables that iptables-nft created for docker's rules, now empty
  for t in $(iptables-save 2>/dev/null | sed -n 's/^\*//p'); do
    grep -qxF "table $t" "$RECORD" && continue
    [[ -z "$(iptables-save -t "$t" | grep -E '^-A|^:' | grep -vE '^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) ')" ]] \
      && nft delete table ip "$t" 2>/dev/null || true
  done
  # kind bind-mounts /lib/modules (docker creates it, empty, when missing); dockerd
  # keeps a plugins dir in /run/docker whatever its exec root
  restore_sysctls
  if [[ -d /lib/modules ]] && ! grep -qxF 'path /lib/modules' "$RECORD"; then rmdir /lib/modules 2>/dev/null || true; fi
  if [[ -d /run/docker ]] && ! grep -qxF 'path /run/docker' "$RECORD"; then
    rmdir /run/docker/plugins 2>/dev/null || true; rmdir /run/docker 2>/dev/null || true
  fi
  rm -f "$RECORD"
}

stop() {
  if running; then
    local pid; pid="$(cat "$DOCKER_PID")"
    # Everything in this private daemon is the project's: containers and user networks go.
    local ids; ids="$(docker ps -aq 2>/dev/null || true)"
    [[ -z $ids ]] || docker rm -f $ids >/dev/null 2>&1 || true
    for n in $(docker network ls -q --filter type=custom 2>/dev/null); do docker network rm "$n" >/dev/null 2>&1 || true; done
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then log "dockerd did not stop in 30 s: SIGKILL"; kill -KILL "$pid"; sleep 1; fi
    log "dockerd stopped"
  fi
  # mounts left under the exec root (netns files of containers killed with the daemon)
  awk -v s="$KIND_STATE/exec" '$5 ~ "^"s {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$KIND_STATE/exec" "$DOCKER_PID" "$DOCKER_SOCK"
  undo_host
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) printf 'export DOCKER_HOST=%q PATH=%q\n' "$DOCKER_HOST" "$KIND_BIN_DIR:$PATH" ;;
  *) die "usage: dockerd.sh start|stop|env" ;;
esac
