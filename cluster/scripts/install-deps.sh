#!/usr/bin/env bash
# Installs the Debian packages the e2e cluster runs on, so a clean machine gets
# them from the project's own files. Skips apt entirely when all are present.
source "$(dirname "$0")/lib.sh"

PACKAGES=(containerd runc containernetworking-plugins iptables conntrack openssl
          debootstrap iproute2 ca-certificates gettext-base nftables)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if (( ${#missing[@]} == 0 )); then
  exit 0
fi
[[ $EUID -eq 0 ]] || die "installing ${missing[*]} needs root"
log "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: containerd would otherwise pull in extra tooling.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
