# Starting, waiting for and stopping the cluster's daemons (sourced by up.sh,
# down.sh and status.sh). Every daemon is a detached child with a pid file in
# $PIDS and its output in $LOGS/<component>.log.

pid_of() { local f="$PIDS/$1.pid"; [[ -s "$f" ]] && cat "$f"; }

# alive NAME -- the recorded pid exists and is still the binary we started.
alive() {
  local pid; pid="$(pid_of "$1")" || return 1
  [[ -d "/proc/$pid" ]] || return 1
  grep -qa -- "$1" "/proc/$pid/cmdline" 2>/dev/null
}

# start NAME CMD... -- detached from make's session, stdin closed, log appended.
start() {
  local name="$1"; shift
  mkdir -p "$LOGS" "$PIDS"
  if alive "$name"; then log "$name already running (pid $(pid_of "$name"))"; return 0; fi
  printf '\n==== %s start %s\n%s\n' "$name" "$(date -u +%FT%TZ)" "$*" >> "$LOGS/$name.log"
  setsid "$@" < /dev/null >> "$LOGS/$name.log" 2>&1 &
  echo $! > "$PIDS/$name.pid"
}

fail_component() {
  local name="$1" why="$2"
  {
    printf '[cluster] ERROR: %s %s\n' "$name" "$why"
    printf '[cluster]   log: %s (last lines below)\n' "$LOGS/$name.log"
    tail -n 15 "$LOGS/$name.log" 2>/dev/null | sed 's/^/    /'
    printf '[cluster]   run `make cluster-down` to clean up\n'
  } >&2
  exit 1
}

# wait_ready NAME SECONDS CHECK... -- poll CHECK until it succeeds; fail naming
# the component (and its log) if the process dies or time runs out.
wait_ready() {
  local name="$1" limit="$2"; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [[ "$name" != node ]] && ! alive "$name"; then fail_component "$name" "exited during start-up"; fi
    if (( $(date +%s) >= deadline )); then fail_component "$name" "not ready after ${limit}s"; fi
    sleep 0.5
  done
}

# stop NAME -- SIGTERM, then SIGKILL after a grace period; removes the pid file.
stop() {
  local name="$1" pid i
  pid="$(pid_of "$name")" || return 0
  if alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 40); do alive "$name" || break; sleep 0.25; done
    if alive "$name"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.3; fi
  fi
  rm -f "$PIDS/$name.pid"
}
