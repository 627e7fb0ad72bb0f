#!/usr/bin/env bash
# Debian packages the test suite needs besides the devcloud's own (installed by `yunshang devcloud up`).
# Idempotent: installs only what is missing.
set -euo pipefail
PKGS=(qemu-utils rsync openssh-server openssh-client prometheus prometheus-alertmanager
      postgresql chromium util-linux iproute2 curl)
PKGS+=(prometheus-openstack-exporter)   # exporters: the peer measured by bench/exporter.py
PKGS+=(fonts-wqy-microhei)             # lifecycle: a CJK font so bill statements render department names in Chromium
PKGS+=(chromium-driver)                # api: the portal driven in headless Chromium through Selenium
PKGS+=(procps)                         # migration: ps in discover_hosts (rsync, sshd, qemu-img, unshare, ss listed above)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "system-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  # Keep apt from starting daemons on their default ports: the tests start their own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
