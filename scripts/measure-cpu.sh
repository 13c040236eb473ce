#!/usr/bin/env bash
# The CPU figures of docs/performance.md and docs/scaling.md, in one run on an idle
# machine. Writes one line per measurement to OUT (default: stdout).
#
#   scripts/measure-cpu.sh [MODEL.safetensors] [DATA_DIR]
#
# MODEL defaults to the shipped model, DATA_DIR to data/emoji64 (`stargan data emoji
# --size 64 --out data/emoji64`). OLD_BIN, when set, is an older stargan to compare with.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/stargan
MODEL=${1:-models/emoji64.safetensors}
DATA=${2:-data/emoji64}
export OMP_WAIT_POLICY=PASSIVE
say() { echo "$*"; }

say "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
for round in 1 2 3; do
  [ -n "${OLD_BIN:-}" ] && say "infer afhq b1 old: $($OLD_BIN bench infer --preset afhq --device cpu --batch 1 --iters 5 --json)"
  say "infer afhq b1: $($BIN bench infer --preset afhq --device cpu --batch 1 --iters 5 --json)"
  say "infer afhq b1 trim: $($BIN --trim-gpu-libraries bench infer --preset afhq --device cpu --batch 1 --iters 5 --json)"
done
say "train emoji64 b4 2 threads: $($BIN bench train --config models/emoji64.config.json --device cpu --batch 4 --iters 20 --warmup 3 --json)"
say "train emoji64 b4 1 thread: $($BIN --threads 1 bench train --config models/emoji64.config.json --device cpu --batch 4 --iters 20 --warmup 3 --json)"
say "allreduce afhq 2 procs gloo: $($BIN bench allreduce --preset afhq --nproc 2 --device cpu --iters 5 --json)"
say "allreduce emoji64 2 procs gloo: $($BIN bench allreduce --config models/emoji64.config.json --nproc 2 --device cpu --iters 10 --json)"
W=$(ls ~/.cache/stargan/weights/default_1.pt 2>/dev/null || echo "")
[ -n "$W" ] && say "inception: $(./target/release/examples/inception_speed "$W" 16 | tr '\n' ' ')"
if [ -n "${MEASURE_EVAL:-}" ]; then
  start=$(date +%s.%N)
  $BIN eval --baseline real --data "$DATA" --num-outs 1 --max-per-domain 64 --device cpu --out /tmp/measure-eval >/dev/null 2>&1
  end=$(date +%s.%N)
  say "eval real baseline, 64 per domain, 1 output (1536 images + 768 paired): $(echo "$end - $start" | bc) s"
fi
say "serve load: $(./target/release/examples/serve_load 8 30 4 -- --checkpoint "$MODEL" --device cpu 2>/dev/null | tail -1)"
