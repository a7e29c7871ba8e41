#!/usr/bin/env bash
# Installs what building ayt needs on Debian (HDF5 headers, pkg-config), and tmux for the
# terminal UI end-to-end test. Idempotent.
set -euo pipefail
need=()
for pkg in libhdf5-dev pkg-config tmux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
