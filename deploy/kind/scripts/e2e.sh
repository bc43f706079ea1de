#!/usr/bin/env bash
# make kind-e2e: the user-facing kind targets, executed here for real.
#   1. set up (cached by version): Debian's docker.io, kind from the Go module
#      proxy, the node image and the sample app's base image (built locally);
#   2. snapshot the host; start the private dockerd; docker load the images;
#   3. phase "single": make kind-up (KIND_IMAGE = the local node image), make
#      kind-load, the kind e2e tests (best-practice, no-prestop;
#      tests/e2e/test_kind_e2e.py), make kind-down;
#      phase "multi": the same with kind-config-multinode.yaml (one control
#      plane, two workers): cross-node traffic and the four node-drain
#      scenarios (tests/e2e/test_kind_drain_e2e.py), make kind-down;
#   4. stop dockerd (undoing its host changes) and compare the host with the
#      snapshot: any difference fails the target.
# Teardown runs on failure and on Ctrl-C too; the first failure is the exit code.
# KIND_E2E_LOCK=FILE: hold that lock (flock) for steps 2-4.
# KIND_E2E_PHASES="single multi" (the default): which clusters of step 3, in order.
source "$(dirname "$0")/lib.sh"
S="$KIND_DIR/scripts"
PY="${PY:-$REPO_DIR/.venv/bin/python}"
export KUBECONFIG="$KIND_STATE/kubeconfig"   # kind writes its context here, not to ~/.kube/config
mkdir -p "$KIND_STATE"
t0=$(date +%s)
KIND_E2E_PHASES="${KIND_E2E_PHASES:-single multi}"
MULTINODE="$KIND_DIR/kind-config-multinode.yaml"

images="$(bash "$S/setup.sh")"
node_tar="$(sed -n 1p <<< "$images")"; base_tar="$(sed -n 2p <<< "$images")"
t_setup=$(( $(date +%s) - t0 ))
log "setup (builds, cached) ${t_setup} s"

# On a machine shared with other users of docker/kind/clusters, KIND_E2E_LOCK names a
# lock file: held from here (after the builds) to the end, so builds never block others.
if [[ -n ${KIND_E2E_LOCK:-} ]]; then
  exec 9>"$KIND_E2E_LOCK"
  log "waiting for the lock $KIND_E2E_LOCK"
  flock 9
fi
snap="$KIND_STATE/host"; rm -rf "$snap"
bash "$S/host-snapshot.sh" save "$snap/before"
rc=0; torn=""
failed() { (( rc != 0 )) || rc=1; }   # keep the first failure's code
step() {  # step NAME CMD... -- run unless an earlier step failed; remember the first failure
  (( rc == 0 )) || return 0
  local t=$(date +%s) code=0
  "${@:2}" || code=$?
  log "$1: exit $code, $(( $(date +%s) - t )) s"
  (( code == 0 )) || rc=$code
}
teardown() {
  [[ -n $torn ]] && return 0; torn=1
  trap - INT TERM
  local t=$(date +%s)
  if [[ -S $DOCKER_SOCK ]]; then make -s -C "$REPO_DIR" kind-down >/dev/null 2>&1 || { log "make kind-down failed"; failed; }; fi
  bash "$S/dockerd.sh" stop || failed
  bash "$S/host-snapshot.sh" save "$snap/after"
  bash "$S/host-snapshot.sh" compare "$snap/before" "$snap/after" || failed
  log "teardown $(( $(date +%s) - t )) s; kind-e2e total $(( $(date +%s) - t0 )) s (setup ${t_setup} s); exit $rc"
}
trap 'log "interrupted"; rc=130; teardown; exit 130' INT TERM
# and on any unexpected exit: a dockerd left running keeps its host changes (and,
# under KIND_E2E_LOCK, the lock: it inherits the lock's file descriptor)
trap 'teardown' EXIT

step "dockerd start" bash "$S/dockerd.sh" start
step "docker load" bash "$S/load-images.sh" "$node_tar" "$base_tar"
kind_tests() {  # kind_tests TESTFILE [ENV...]
  env ROLLOUT_HARNESS_KIND_KUBECONFIG="$KUBECONFIG" "${@:2}" \
    "$PY" -m pytest -m kind "$REPO_DIR/tests/e2e/$1" -v -p no:cacheprovider -ra --durations=0
}
for phase in $KIND_E2E_PHASES; do
  case $phase in
    single)  # kind-config.yaml, as users and the example workflow run it
      step "make kind-up" make -s -C "$REPO_DIR" kind-up KIND_IMAGE="$NODE_IMAGE"
      step "make kind-load" make -s -C "$REPO_DIR" kind-load
      step "kind e2e tests" kind_tests test_kind_e2e.py
      step "make kind-down" make -s -C "$REPO_DIR" kind-down ;;
    multi)   # one control plane and two workers: cross-node traffic, then the node drains
      step "make kind-up (multi-node)" make -s -C "$REPO_DIR" kind-up KIND_IMAGE="$NODE_IMAGE" KIND_CONFIG="$MULTINODE"
      step "make kind-load (multi-node)" make -s -C "$REPO_DIR" kind-load
      step "kind drain e2e tests" kind_tests test_kind_drain_e2e.py ROLLOUT_HARNESS_KIND_MULTINODE=1
      step "make kind-down (multi-node)" make -s -C "$REPO_DIR" kind-down ;;
    *) log "KIND_E2E_PHASES: unknown phase '$phase' (single, multi)"; rc=2 ;;
  esac
done
teardown
exit $rc
