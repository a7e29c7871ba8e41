#!/usr/bin/env bash
# The GPU check, run on the GPU machine (one H100 or H200, driver 580, CUDA 13.0, PyTorch as
# python3, no Rust toolchain, no network) in the repository root, with gpu-bundle/
# (scripts/build_gpu_bundle.sh, built here) carried along. In one go, within about 6 minutes (a
# session has 15 minutes of device time, starts included: this leaves room for one rerun):
#   1. nvidia-smi;
#   2. the CUDA tests: every op on a gradient path CPU vs CUDA (value and gradient, max-pool ties
#      included) by the portable kernels and by the native ones (AYT_CUDA_KERNELS=native), the
#      networks end to end on both, a tiny ECT run's first losses CPU vs CUDA on both, resume on
#      CUDA bit-exact;
#   3. `ayt bench --device cuda:0` beside scripts/torch_reference.py (eager fp32, TF32 and bf16
#      autocast, each against ayt at the same precision): the benchmark UNet's ECT step at
#      B = 128 and phi's step at B = 512, each with the portable and the native kernels; EDM's
#      DDPM++ at B = 128 (the paper's step);
#   4. quick-disks and mnist-ect trained on the GPU (shortened), their img/s.
# Everything goes to $OUT/gpu_check.log ($OUT is the device tool's; else the current folder).
# Exits non-zero when a correctness check (1-2) failed; the benchmarks only report.
#
# From the session: device run, command `bash scripts/gpu_check.sh`, carry ["gpu-bundle"],
# timeout_s 390 (docs/gpu.md).
set -uo pipefail
out=${OUT:-$PWD}
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
step() { echo; echo "=== $* ($(date -u +%H:%M:%S), $SECONDS s in)"; }
failed=()

step "machine"
nvidia-smi || failed+=("nvidia-smi")
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'

step "bundle"
[[ -f gpu-bundle/ayt.xz && -f gpu-bundle/cuda-tests.xz ]] || { echo "no gpu-bundle/: run scripts/build_gpu_bundle.sh and carry gpu-bundle"; exit 2; }
built=$(cat gpu-bundle/COMMIT) tree=$(git rev-parse HEAD 2>/dev/null || echo '?')
echo "bundle built from commit $built; the tree here is at $tree"
[[ $built == "$tree" ]] || echo "WARNING: the bundle is not from this tree's commit (rebuild with scripts/build_gpu_bundle.sh)"
bin=$(mktemp -d /tmp/ayt-gpu.XXXXXX)
for b in ayt cuda-tests; do xz -dc "gpu-bundle/$b.xz" >"$bin/$b" && chmod +x "$bin/$b"; done
# CUDA's libraries come from PyTorch's nvidia wheels (cu13), the driver's libcuda from the system.
libs=$(python3 - <<'PY'
import glob, os, site
want = ("libcudart.so", "libcublas.so", "libcublasLt.so", "libcurand.so", "libnvrtc.so")
dirs = {os.path.dirname(f) for sp in site.getsitepackages() for f in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True)
        if os.path.basename(f).startswith(want)}
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ldd "$bin/ayt" | grep -E 'not found|cuda|cublas|curand|nvrtc'
export AYT_WEIGHTS=$PWD/weights AYT_HOME=/tmp/ayt-home RUST_BACKTRACE=1

step "1. CUDA tests (CPU vs CUDA; portable and native kernels)"
timeout 120 "$bin/cuda-tests" --test-threads=1 --nocapture || failed+=("CUDA tests")

bench() {  # bench KERNELS TIMEOUT ARGS...: scripts/bench_vs_torch.py with AYT_CUDA_KERNELS=KERNELS
  local kernels=$1 limit=$2
  shift 2
  echo "--- ayt kernels: $kernels"
  AYT_CUDA_KERNELS=$kernels timeout "$limit" python3 scripts/bench_vs_torch.py --ayt "$bin/ayt" --python python3 --device cuda \
    --reps 1 --steps 5 "$@" || echo "(the benchmark stopped early: see above)"
}

step "2. ayt vs PyTorch on the GPU (img/s; ratio = ayt / torch): the UNet ECT step at B=128, phi at B=512"
bench portable 50 --cases unet --batches 128 --torch-precisions fp32,tf32,bf16
bench native 35 --cases unet --batches 128 --torch-precisions fp32,tf32
bench portable 25 --cases feat --batches 512 --torch-precisions fp32,tf32
bench native 20 --cases feat --batches 512 --torch-precisions tf32,bf16

step "2b. the paper's network: EDM's DDPM++ ECT step at batch 128 beside PyTorch (README's GPU-hours estimate)"
bench native 45 --cases ddpmpp --batches 128 --torch-precisions fp32,tf32,bf16

step "3. quick-disks and mnist-ect on the GPU (shortened), native kernels"
train_rate() {  # train_rate PRESET STEPS TIMEOUT: the median img/s over the second half
  local preset=$1 steps=$2 limit=$3 out=/tmp/gpu-run-$1
  rm -rf "$out"
  if AYT_CUDA_KERNELS=native timeout "$limit" "$bin/ayt" train --preset "presets/$preset.toml" --device cuda:0 --out "$out" \
    --set "train.iterations=$steps" --set log.sample_every=0 --set log.checkpoint_every=0 --set probe.every=0 >/dev/null; then
    python3 - "$out/run.h5" "$preset" <<'PY'
import h5py, statistics, sys
with h5py.File(sys.argv[1], "r") as f:
    v = f["scalars/img_per_s/value"][:]
    steps = f["scalars/img_per_s/step"][:]
print(f"{sys.argv[2]} on cuda:0: median {statistics.median(v[len(v) // 2:]):.0f} img/s over steps {steps[len(v) // 2]}-{steps[-1]}")
PY
  else
    failed+=("$preset on the GPU")
  fi
}
train_rate quick-disks 300 30
train_rate mnist-ect 200 30

step "summary"
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all correctness checks passed"
