#!/usr/bin/env bash
# Thin wrapper kept for existing instructions: scripts/gpu_run.py does the work.
# usage: scripts/gpu_run.sh OUTDIR [BUDGET_SECONDS] [more gpu_run.py options]
#   CLDRO_GPU_SMOKE=1  tiny CPU smoke mode
set -euo pipefail
OUT=${1:?usage: scripts/gpu_run.sh OUTDIR [BUDGET_SECONDS]}
BUDGET=${2:-780}
shift $(( $# >= 2 ? 2 : 1 ))
EXTRA=()
if [[ "${CLDRO_GPU_SMOKE:-0}" == "1" ]]; then EXTRA+=(--smoke); fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec python3 "$(dirname "$0")/gpu_run.py" --out "$OUT" --budget "$BUDGET" "${EXTRA[@]}" "$@"
