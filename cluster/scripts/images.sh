#!/usr/bin/env bash
# Imports the pause and sample-app image archives into the cluster's containerd
# (namespace k8s.io, where the CRI plugin looks). Skips an archive already
# imported; `images.sh import` needs containerd running.
source "$(dirname "$0")/lib.sh"

import_one() {
  local archive; archive="$(readlink -f "$IMAGE_DIR/$1.tar")"
  [[ -s "$archive" ]] || die "image archive $IMAGE_DIR/$1.tar missing; run make images"
  local stamp="$STATE/containerd/root/rh-imported-$(basename "$archive")"
  if [[ -f "$stamp" ]] && ctr -a "$CONTAINERD_SOCK" -n k8s.io images ls -q | grep -qxF "$2"; then
    return 0
  fi
  log "importing $2 from $(basename "$archive")"
  ctr -a "$CONTAINERD_SOCK" -n k8s.io images import --platform linux/amd64 "$archive" >/dev/null \
    || die "ctr images import of $archive failed (containerd log: $LOGS/containerd.log)"
  touch "$stamp"
}

case "${1:-import}" in
  import)
    [[ -S "$CONTAINERD_SOCK" ]] || die "containerd is not running ($CONTAINERD_SOCK missing); make cluster-up imports images itself"
    import_one pause "$PAUSE_IMAGE"
    import_one sample-app "$SAMPLE_APP_IMAGE"
    import_one traefik "$TRAEFIK_IMAGE"
    import_one generator "$GENERATOR_IMAGE"
    ;;
  *) die "usage: images.sh import" ;;
esac
