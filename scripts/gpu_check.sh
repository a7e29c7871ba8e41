#!/usr/bin/env bash
# The GPU check, run on the GPU machine (one H200, driver 580, CUDA 13.0, PyTorch as python3, no
# Rust toolchain, no network) in the repository root, with gpu-bundle/ (scripts/build_gpu_bundle.sh,
# built here) carried along. In one go, within about 8 minutes:
#   1. nvidia-smi;
#   2. the CUDA tests: every op on a gradient path CPU vs CUDA (value and gradient, max-pool ties
#      included), the networks end to end, a tiny ECT run's first losses CPU vs CUDA, resume on
#      CUDA bit-exact;
#   3. `ayt bench --device cuda:0` beside scripts/torch_reference.py (eager fp32 and bf16 autocast)
#      at B = 32, 128 and 512, the ratio per case;
#   4. quick-disks trained on the GPU, its img/s.
# Everything goes to $OUT/gpu_check.log ($OUT is the device tool's; else the current folder).
# Exits non-zero when a correctness check (1-2) failed; the benchmarks only report.
#
# From the session: device run, command `bash scripts/gpu_check.sh`, carry ["gpu-bundle"],
# timeout_s 540 (docs/gpu.md).
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

step "1. CUDA tests (CPU vs CUDA)"
timeout 240 "$bin/cuda-tests" --test-threads=1 --nocapture || failed+=("CUDA tests")

step "2. ayt bench vs PyTorch on the GPU (img/s; ratio = ayt / torch)"
timeout 300 python3 scripts/bench_vs_torch.py --ayt "$bin/ayt" --python python3 --device cuda --torch-precisions fp32,bf16 \
  --batches 32,128,512 --reps 1 --steps 10 --cases unet,feat || echo "(the benchmark stopped early: see above)"

step "2b. the paper's network: EDM's DDPM++ ECT step at batch 128 beside PyTorch (README's GPU-hours estimate)"
timeout 180 python3 scripts/bench_vs_torch.py --ayt "$bin/ayt" --python python3 --device cuda --torch-precisions fp32,bf16 \
  --batches 128 --reps 1 --steps 5 --cases ddpmpp || echo "(the DDPM++ benchmark stopped early: see above)"

step "3. quick-disks on the GPU"
rm -rf /tmp/qd
if timeout 150 "$bin/ayt" train --preset presets/quick-disks.toml --device cuda:0 --out /tmp/qd; then
  python3 - <<'PY'
import h5py, statistics
with h5py.File("/tmp/qd/run.h5", "r") as f:
    v = f["scalars/img_per_s/value"][:]
    steps = f["scalars/img_per_s/step"][:]
print(f"quick-disks on cuda:0: median {statistics.median(v[len(v) // 2:]):.0f} img/s over steps {steps[len(v) // 2]}-{steps[-1]}")
PY
else
  failed+=("quick-disks on the GPU")
fi

step "summary"
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all correctness checks passed"
