#!/usr/bin/env bash
# ResNet-18 (CIFAR variant) on all of CIFAR-10 with InfoNCE (NT-Xent) and ADNCE, τ = 0.4,
# μ = 0.7, σ = 0.5 (the authors' CIFAR-10 settings), batch 256, AdamW lr 1e-3, seed 2023,
# one H200. Writes OUTDIR/resnet18-{infonce,adnce}.json (the `cldro train --json` record: kNN
# top-1 per epoch with entry 0 = untrained, loss curve, implied radius, linear probe).
#
# usage: scripts/gpu_run.sh OUTDIR
#
# Budget: ≤ 8 minutes for both runs. Estimate (not measured: no GPU was available when this
# was written): ResNet-18 CIFAR ≈ 0.56 GFLOP/image forward, ≈ 1.7 GFLOP fwd+bwd, i.e. ≈ 0.85
# TFLOP per step of 2 × 256 views; at a realistic 100–200 TFLOP/s in bf16 + channels_last on
# an H200 plus GPU augmentation and Python overhead, ≈ 25–40 ms/step → 195 steps ≈ 5–8 s per
# epoch, + ≈ 2 s for the per-epoch kNN over 60k images. 12 epochs ≈ 1.5–2 min per loss, plus
# ≈ 30 s start-up (decoding 60k JPEGs on the CPU once; later runs use the cache) → ≈ 4–5 min for
# both. Override with CLDRO_GPU_EPOCHS; measure the step time on the first run and rescale.
#
# Environment:
#   CLDRO_DATA        CIFAR npz (default ../shared/data/cifar10-jpeg.npz)
#   CLDRO_GPU_EPOCHS  epochs per loss (default 12)
#   CLDRO_WORK        scratch folder for the decode cache and checkpoints (default /tmp/cldro-gpu);
#                     kept out of OUTDIR because checkpoints are large (≈ 135 MB each)
#   CLDRO_GPU_SMOKE=1 tiny CPU smoke mode (256 images, 1 epoch, batch 32) to test this script
#   CLDRO             the cldro command (default .venv/bin/cldro if present, else cldro on PATH,
#                     else `python3 -m validation.cli` from this checkout: the device machine
#                     has torch but no installed cldro)
set -euo pipefail

OUT=${1:?usage: scripts/gpu_run.sh OUTDIR}
mkdir -p "$OUT"
DATA=${CLDRO_DATA:-../shared/data/cifar10-jpeg.npz}
WORK=${CLDRO_WORK:-/tmp/cldro-gpu}
mkdir -p "$WORK"
if [[ -n "${CLDRO:-}" ]]; then
    CMD=("$CLDRO")
elif [[ -x .venv/bin/cldro ]]; then
    CMD=(.venv/bin/cldro)
elif command -v cldro >/dev/null 2>&1; then
    CMD=(cldro)
else
    export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
    CMD=(python3 -m validation.cli)
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

if [[ "${CLDRO_GPU_SMOKE:-0}" == "1" ]]; then
    SIZE=(--subset 256 --test-subset 64 --epochs 1 --batch-size 32 --device cpu --radius-every 4)
    TAG=smoke
else
    SIZE=(--epochs "${CLDRO_GPU_EPOCHS:-12}" --batch-size 256 --device cuda --radius-every 10)
    TAG=full
fi

for LOSS in infonce adnce; do
    echo "[$(date -u +%H:%M:%S)] resnet18 / $LOSS ($TAG)" >&2
    "${CMD[@]}" train --dataset cifar10 --data "$DATA" --encoder resnet18 --loss "$LOSS" \
        --temperature 0.4 --mu 0.7 --sigma 0.5 --lr 1e-3 --weight-decay 1e-6 --seed 2023 \
        "${SIZE[@]}" --cache-dir "$WORK/cache" \
        --checkpoint "$WORK/resnet18-$LOSS-$TAG.pt" --resume --no-progress \
        --json "$OUT/resnet18-$LOSS.json"
done
echo "[$(date -u +%H:%M:%S)] done: $OUT" >&2
