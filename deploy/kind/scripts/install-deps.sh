#!/usr/bin/env bash
# Installs the Debian packages the kind setup needs (dockerd, and what builds
# the node image), so a clean machine gets them from the project's files.
# The docker.io package would start its daemon on install where an init
# script runs; a policy-rc.d that refuses service starts is in place for the
# install only, so nothing runs until dockerd.sh starts our private daemon.
source "$(dirname "$0")/lib.sh"
bash "$CLUSTER_DIR/scripts/install-deps.sh"
PACKAGES=(docker.io debootstrap busybox-static)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
(( ${#missing[@]} == 0 )) && exit 0
[[ $EUID -eq 0 ]] || die "installing ${missing[*]} needs root"
log "installing Debian packages: ${missing[*]}"
policy=/usr/sbin/policy-rc.d; ours=""
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; ours=1
fi
export DEBIAN_FRONTEND=noninteractive
rc=0
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
[[ -n $ours ]] && rm -f "$policy"
(( rc == 0 )) || die "apt-get install ${missing[*]} failed"
