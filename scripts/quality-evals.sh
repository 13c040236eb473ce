#!/bin/bash
# The evaluations behind docs/quality.md, one folder each under OUT (eval.json + eval.log).
# usage: scripts/quality-evals.sh OUT [shipped|identity|real|demo-train|shipped-div|demo-train-div ...]
# Needs data/emoji64 (stargan data emoji --size 64 --out data/emoji64) and, for demo-train,
# runs/demo-train from `make demo-train`.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BIN:-target/release/stargan}
D=${DATA:-data/emoji64}
OUT=${1:?usage: $0 OUT [which ...]}; shift
DEMO=runs/demo-train/checkpoints/000300.safetensors
# FID, style accuracy and the paired metric: 64 validation images per domain, one output each,
# so every model and baseline is scored on the same 12 × 64 translations.
main="--data $D --max-per-domain 64 --num-outs 1 --device cpu"
# LPIPS diversity needs several outputs per source: 10 outputs of 16 sources per domain.
div="--data $D --max-per-domain 16 --num-outs 10 --device cpu"
for which in "${@:-shipped identity real demo-train shipped-div demo-train-div}"; do
  for w in $which; do
    case $w in
      shipped) args="$main" ;;
      identity) args="$main --baseline identity" ;;
      real) args="$main --baseline real" ;;
      demo-train) args="$main --checkpoint $DEMO" ;;
      shipped-div) args="$div" ;;
      demo-train-div) args="$div --checkpoint $DEMO" ;;
      *) echo "unknown evaluation $w" >&2; exit 2 ;;
    esac
    mkdir -p "$OUT/$w"
    echo "$B eval $args --out $OUT/$w" | tee "$OUT/$w/command.txt"
    start=$(date +%s)
    $B eval $args --out "$OUT/$w" > "$OUT/$w/eval.log" 2>&1
    echo "$w: $(( $(date +%s) - start )) s"
  done
done
