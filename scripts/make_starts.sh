#!/usr/bin/env bash
# Remakes the starting points shipped in weights/start/ (see weights/start/README.md): the MNIST
# phi, the EDM denoiser (packed: EMA weights only) and the FD evaluator network, each trained by
# ayt itself from the presets in presets/ with their seeds, then SHA256SUMS and the recorded
# FD-evalnet of the packed denoiser (tests/shipped_starts.rs checks both).
#
#   scripts/make_starts.sh [HOME]     # HOME: a scratch ayt home (default: a new temporary one)
#
# Takes about 1.5 h on 2 CPU cores (phi ~11 min, EDM ~45 min, evaluator and FD a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
home="${1:-$(mktemp -d)}"
export AYT_HOME="$home"
cargo build --release
ayt=target/release/ayt
out=weights/start

# The lengths the shipped files were made with (shorter than the presets' paper lengths, to fit
# a CPU session; raise them for better starting points and re-run).
phi_iterations=4000
edm_iterations=2000

"$ayt" features train --preset mnist-phi --set train.iterations=$phi_iterations
"$ayt" train --preset mnist-edm --set train.iterations=$edm_iterations \
  --set log.checkpoint_every=250 --set log.sample_every=250 --out "$home/runs/mnist-edm"

rm -rf "$out/mnist-edm"
"$ayt" pack "$home/runs/mnist-edm" --out "$out/mnist-edm"
mkdir -p "$out/features"
sha=$(ls "$home/features" | sed -n 's/^mnist-phi-\([0-9a-f]*\)\.h5$/\1/p')
cp "$home/features/mnist-phi-$sha.h5" "$out/features/"
# the evaluator is trained by the first evaluation (eval.evalnet_iterations of the preset, 1500)
"$ayt" eval "$home/runs/mnist-edm" --n 256 | tee "$home/eval.txt"
cp "$home/features/evalnet-$sha.h5" "$out/features/"

(cd "$out" && find . -type f \( -name '*.safetensors' -o -name '*.json' -o -name '*.h5' -o -name 'preset.toml' \) \
  ! -name eval.json | sed 's|^\./||' | sort | xargs sha256sum > SHA256SUMS)
# recorded after the sums: the checksums are compiled in, so a fresh build checks the eval too
cargo build --release
"$ayt" eval "$out/mnist-edm" --n 256 --json > "$out/mnist-edm/eval.json"
cat "$out/mnist-edm/eval.json"
echo "shipped starting points in $out (scratch home $home)"
