#!/usr/bin/env bash
# Builds the e2e cluster's image archives into the build cache:
#   pause       the static pause binary alone
#   sample-app  Debian bookworm (debootstrap, minbase) + python3 venv + sample-app/
#   generator   the same rootfs + a venv (generator-requirements.txt) + the harness's
#               engine side (traffic.generators' pods)
#   traefik     the ingress proxy's static binary alone (proxy/build.sh)
# Each archive is keyed by a hash of its inputs, so a warm run does nothing.
# Prints nothing on stdout; `images.sh` imports the archives into containerd.
source "$(dirname "$0")/../scripts/lib.sh"

ARCHIVE="$CLUSTER_DIR/images/image_archive.py"
APP_SRC="${SAMPLE_APP_DIR:-$REPO_DIR/sample-app}"
ROOTFS_TAR="$BUILD_CACHE/rootfs/bookworm-python3-minbase.tar"
mkdir -p "$IMAGE_DIR" "$BUILD_CACHE/rootfs"

# The Debian mirror this machine's apt already uses (never a hard-coded host).
debian_mirror() {
  local uri
  uri="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [[ -n "$uri" ]] || uri="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d} for debootstrap"
  echo "$uri"
}

# static_image NAME BIN TAG -- one static binary alone in its image, as /NAME
# (pause, traefik); the sandbox rootfs is mounted read-only, so every mount
# point must already exist.
static_image() {
  local name=$1 bin=$2 tag=$3
  local out="$IMAGE_DIR/$name-$(cat "$bin" "$CLUSTER_DIR/images/build-images.sh" | sha256sum | cut -c1-16).tar"
  if [[ ! -s "$out" ]]; then
    local root; root="$(mktemp -d)"
    install -m 0755 "$bin" "$root/$name"
    mkdir -p "$root"/{dev,proc,sys,etc,tmp}
    touch "$root"/etc/{resolv.conf,hostname,hosts}
    python3 "$ARCHIVE" --rootfs "$root" --tag "$tag" --entrypoint "[\"/$name\"]" --out "$out"
    rm -rf "$root"
    log "$name image: $out"
  fi
  ln -sf "$(basename "$out")" "$IMAGE_DIR/$name.tar"
  prune "$name" "$out"
}

build_pause() { static_image pause "$BIN_DIR/pause" "$PAUSE_IMAGE"; }

# prune NAME KEEP -- drop archives of NAME from earlier inputs (a few hundred MB each).
prune() {
  local f
  for f in "$IMAGE_DIR/$1"-*.tar; do [[ "$f" == "$2" || ! -f "$f" ]] || rm -f "$f"; done
}

build_rootfs() {
  [[ -s "$ROOTFS_TAR" ]] && return 0
  local dir="$BUILD_CACHE/rootfs/work" start; start=$(date +%s)
  rm -rf "$dir"
  log "debootstrap bookworm (minbase + python3, python3-venv) -> $ROOTFS_TAR"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$dir" \
    "$(debian_mirror)" > "$BUILD_CACHE/rootfs/debootstrap.log" 2>&1 \
    || die "debootstrap failed; log: $BUILD_CACHE/rootfs/debootstrap.log"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar --numeric-owner --xattrs -C "$dir" -cf "$ROOTFS_TAR.partial" . && mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  rm -rf "$dir"
  log "rootfs built in $(( $(date +%s) - start )) s"
}

# pip install DIR/requirements.txt into a venv DIR/.venv inside the image root,
# with the image's own Python; the host's resolver and CA bundle (and pip
# config) are lent for the install and removed before packing.
pip_into_root() {  # ROOT DIR NAME WHAT
  local root=$1 dir=$2 name=$3 what=$4 lent=()
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  if [[ -f /etc/pip.conf ]]; then cp /etc/pip.conf "$root/etc/pip.conf"; lent+=("$root/etc/pip.conf"); fi
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  env -i PATH=/usr/bin:/bin HOME=/root PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
      ${PIP_INDEX_URL:+PIP_INDEX_URL="$PIP_INDEX_URL"} ${PIP_CERT:+PIP_CERT="$PIP_CERT"} \
      "$(command -v chroot)" "$root" /bin/sh -c "python3 -m venv $dir/.venv && $dir/.venv/bin/pip install -q -r $dir/requirements.txt" \
      > "$IMAGE_DIR/$name-pip.log" 2>&1 \
    || die "pip install of $what into the image failed; log: $IMAGE_DIR/$name-pip.log"
  rm -f "${lent[@]}"
  : > "$root/etc/resolv.conf"
}

app_hash() {
  { sha256sum "$ROOTFS_TAR" | cut -d' ' -f1
    sha256sum "$CLUSTER_DIR/images/build-images.sh" "$ARCHIVE" | cut -d' ' -f1
    (cd "$APP_SRC" && find . -type f ! -path '*/__pycache__/*' ! -path './.venv/*' -print0 \
       | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

build_sample_app() {
  [[ -f "$APP_SRC/app.py" && -f "$APP_SRC/requirements.txt" ]] \
    || die "sample app not found: $APP_SRC/app.py and requirements.txt are needed"
  build_rootfs
  local out="$IMAGE_DIR/sample-app-$(app_hash).tar"
  if [[ ! -s "$out" ]]; then
    local root="$BUILD_CACHE/rootfs/app-work" start; start=$(date +%s)
    rm -rf "$root"; mkdir -p "$root"
    tar -C "$root" -xf "$ROOTFS_TAR"
    mkdir -p "$root/app"
    (cd "$APP_SRC" && tar --exclude=__pycache__ --exclude=.venv -cf - .) | tar -C "$root/app" -xf -
    pip_into_root "$root" /app sample-app sample-app/requirements.txt
    find "$root/app" -name __pycache__ -prune -exec rm -rf {} +
    python3 "$ARCHIVE" --rootfs "$root" --tag "$SAMPLE_APP_IMAGE" \
      --entrypoint '["/app/.venv/bin/python", "/app/app.py"]' \
      --env PATH=/app/.venv/bin:/usr/local/bin:/usr/bin:/bin --env PYTHONUNBUFFERED=1 \
      --workdir /app --out "$out"
    rm -rf "$root"
    log "sample-app image built in $(( $(date +%s) - start )) s: $out"
  fi
  ln -sf "$(basename "$out")" "$IMAGE_DIR/sample-app.tar"
  prune sample-app "$out"
}

# The generator pods (traffic.generators): the rootfs, a venv with
# generator-requirements.txt (cached by its hash: pyarrow is the slow part),
# and the harness's engine-side packages (errors, model, traffic) in /gen.
GEN_REQS="$CLUSTER_DIR/images/generator-requirements.txt"
generator_hash() {
  { sha256sum "$ROOTFS_TAR" | cut -d' ' -f1
    sha256sum "$CLUSTER_DIR/images/build-images.sh" "$ARCHIVE" "$GEN_REQS" | cut -d' ' -f1
    (cd "$REPO_DIR" && find harness/__init__.py harness/errors.py harness/model harness/traffic -name '*.py' -print0 \
       | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

build_generator() {
  build_rootfs
  local out="$IMAGE_DIR/generator-$(generator_hash).tar"
  if [[ ! -s "$out" ]]; then
    local root="$BUILD_CACHE/rootfs/generator-work" start; start=$(date +%s)
    local venv_tar="$BUILD_CACHE/rootfs/generator-venv-$(sha256sum "$GEN_REQS" "$ROOTFS_TAR" | sha256sum | cut -c1-16).tar"
    rm -rf "$root"; mkdir -p "$root"
    tar -C "$root" -xf "$ROOTFS_TAR"
    if [[ -s "$venv_tar" ]]; then
      tar -C "$root" -xf "$venv_tar"
    else
      mkdir -p "$root/gen"; cp "$GEN_REQS" "$root/gen/requirements.txt"
      pip_into_root "$root" /gen generator cluster/images/generator-requirements.txt
      find "$root/gen" -name __pycache__ -prune -exec rm -rf {} +
      tar -C "$root" -cf "$venv_tar.partial" gen && mv "$venv_tar.partial" "$venv_tar"
      for f in "$BUILD_CACHE"/rootfs/generator-venv-*.tar; do [[ "$f" == "$venv_tar" ]] || rm -f "$f"; done
    fi
    mkdir -p "$root/gen/harness/model" "$root/gen/harness/traffic"
    (cd "$REPO_DIR" && tar --exclude=__pycache__ --exclude='*.so' --exclude='*.c' -cf - harness/__init__.py harness/errors.py harness/model harness/traffic) \
      | tar -C "$root/gen" -xf -
    # the image must run the generator: import it with the image's own Python before packing
    env -i PATH=/usr/bin:/bin "$(command -v chroot)" "$root" /bin/sh -c \
      'cd /gen && /gen/.venv/bin/python -c "import harness.traffic.generator, harness.traffic.engine, uvloop"' \
      > "$IMAGE_DIR/generator-check.log" 2>&1 \
      || die "the generator image cannot import the generator; log: $IMAGE_DIR/generator-check.log"
    find "$root/gen" -name __pycache__ -prune -exec rm -rf {} +
    python3 "$ARCHIVE" --rootfs "$root" --tag "$GENERATOR_IMAGE" \
      --entrypoint '["/gen/.venv/bin/python", "-m", "harness.traffic.generator"]' \
      --env PATH=/gen/.venv/bin:/usr/local/bin:/usr/bin:/bin --env PYTHONUNBUFFERED=1 --env PYTHONPATH=/gen \
      --workdir /gen --out "$out"
    rm -rf "$root"
    log "generator image built in $(( $(date +%s) - start )) s: $out"
  fi
  ln -sf "$(basename "$out")" "$IMAGE_DIR/generator.tar"
  prune generator "$out"
}

# The ingress proxy (traffic.via: ingress): the static Traefik binary that
# proxy/build.sh builds, alone in its image (as pause).
build_traefik() {
  local bin; bin="$(bash "$REPO_DIR/proxy/build.sh")" || die "building Traefik failed (proxy/build.sh)"
  static_image traefik "$bin" "$TRAEFIK_IMAGE"
}

case "${1:-all}" in
  rootfs) build_rootfs ;;
  sample-app) build_sample_app ;;
  traefik) build_traefik ;;
  generator) build_generator ;;
  all)
    [[ -x "$BIN_DIR/pause" ]] || die "pause binary missing in $BIN_DIR; run cluster/scripts/build-node.sh"
    build_pause
    build_sample_app
    build_generator
    build_traefik ;;
  *) die "usage: build-images.sh [all|rootfs|sample-app|generator|traefik]" ;;
esac
