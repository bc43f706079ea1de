#!/usr/bin/env bash
# Builds the base image sample-app/Dockerfile starts FROM ($BASE_IMAGE), so
# `make kind-load` (docker build sample-app/) runs unchanged here without a
# registry: a debootstrap bookworm root (Debian's Python 3.11; the cluster's when built)
# with a venv in /usr/local/python first on PATH, so `python` and `pip` are
# the venv's, as in the official image. pip inside `docker build` reaches
# PyPI; the host's pip settings (CA bundle) are copied in so it trusts what
# the host trusts. Prints the archive path on stdout.
source "$(dirname "$0")/lib.sh"
ARCHIVE="$CLUSTER_DIR/images/image_archive.py"
OUT_DIR="$KIND_CACHE/base"
mkdir -p "$OUT_DIR"
# The cluster's sample-app root when its build made one (same packages), else our own:
# building into the cluster's path here could race a cluster build doing the same.
ROOTFS_TAR="$BUILD_CACHE/rootfs/bookworm-python3-minbase.tar"
if [[ ! -s $ROOTFS_TAR ]]; then
  ROOTFS_TAR="$OUT_DIR/bookworm-python3-minbase.tar"
  if [[ ! -s $ROOTFS_TAR ]]; then
    dir="$OUT_DIR/rootfs-work"; rm -rf "$dir"; start=$(date +%s)
    log "debootstrap bookworm (minbase + python3, python3-venv) -> $ROOTFS_TAR"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$dir" \
      "$(debian_mirror)" > "$OUT_DIR/debootstrap.log" 2>&1 \
      || die "debootstrap failed; log: $OUT_DIR/debootstrap.log"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar --numeric-owner --xattrs -C "$dir" -cf "$ROOTFS_TAR.partial" . && mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
    rm -rf "$dir"
    log "base rootfs built in $(( $(date +%s) - start )) s"
  fi
fi
key="$( { sha256sum "$ROOTFS_TAR" "$0" "$ARCHIVE" | cut -d' ' -f1; cat /etc/pip.conf 2>/dev/null; } | sha256sum | cut -c1-16)"
out="$OUT_DIR/python-3.11-slim-$key.tar"
if [[ ! -s $out ]]; then
  start=$(date +%s)
  root="$OUT_DIR/work"; rm -rf "$root"; mkdir -p "$root"
  tar -C "$root" -xf "$ROOTFS_TAR"
  env -i PATH=/usr/bin:/bin "$(command -v chroot)" "$root" python3 -m venv /usr/local/python \
    || die "python3 -m venv in the base image failed"
  [[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$root/etc/pip.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  : > "$root/etc/resolv.conf"
  python3 "$ARCHIVE" --rootfs "$root" --tag "$BASE_IMAGE" --entrypoint '[]' \
    --env PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --out "$out"
  rm -rf "$root"
  for f in "$OUT_DIR"/python-3.11-slim-*.tar; do [[ $f == "$out" ]] || rm -f "$f"; done
  log "base image $BASE_IMAGE built in $(( $(date +%s) - start )) s: $out"
fi
echo "$out"
