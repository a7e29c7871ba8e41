#!/usr/bin/env bash
# Builds, here, what scripts/gpu_check.sh runs on the GPU machine, which has no Rust toolchain and
# no network: the release `ayt` and the CUDA test binary (tests/cuda.rs), built for sm_90 with the
# `cuda` feature and HDF5 linked in statically (that machine has no libhdf5), stripped and
# xz-compressed into gpu-bundle/ (git-ignored; name it in the device call's `carry`). The whole
# working tree that travels must stay under 64 MiB: the script prints the total.
#
# Usage: scripts/build_gpu_bundle.sh        (CUDA from scripts/cuda_toolchain.sh; CMake from PyPI)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
eval "$(scripts/cuda_toolchain.sh)"
# hdf5-static builds HDF5 from source and needs CMake >= 3.26.
tools=$repo/target/build-tools
if ! "$tools/bin/cmake" --version >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check --target "$tools" 'cmake>=3.26,<4' >&2
fi
export PATH="$tools/bin:$PATH" PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}"
target=$repo/target-gpu
features=cuda,hdf5-static
cargo build --release --features "$features" --target-dir "$target" --bin ayt
tests_bin=$(cargo test --release --features "$features" --target-dir "$target" --test cuda --no-run --message-format=json |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        print(m["executable"])' | tail -1)
[[ -x $tests_bin ]] || { echo "build_gpu_bundle: no CUDA test binary was built" >&2; exit 1; }
rm -rf gpu-bundle && mkdir -p gpu-bundle
strip -o gpu-bundle/ayt "$target/release/ayt"
strip -o gpu-bundle/cuda-tests "$tests_bin"
for b in ayt cuda-tests; do
  # what the binaries still need from the machine: the driver and CUDA's libraries, nothing else
  ldd "gpu-bundle/$b" | grep -v -E 'libcuda|libcudart|libcublas|libcurand|libnvrtc|linux-vdso|libc\.so|libm\.so|libgcc_s|libstdc\+\+|ld-linux|libdl|libpthread|librt' &&
    { echo "build_gpu_bundle: $b needs a library the GPU machine may lack (above)" >&2; exit 1; } || true
  xz -T2 -9 -f "gpu-bundle/$b"
done
git -C "$repo" rev-parse HEAD >gpu-bundle/COMMIT
ls -la gpu-bundle >&2
tree_bytes=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
bundle_bytes=$(du -cb gpu-bundle/* | tail -1 | cut -f1)
echo "build_gpu_bundle: working tree $((tree_bytes / 1048576)) MiB + bundle $((bundle_bytes / 1048576)) MiB (the device takes 64 MiB)" >&2
(( tree_bytes + bundle_bytes < 64 * 1048576 )) || { echo "build_gpu_bundle: too large to travel" >&2; exit 1; }
