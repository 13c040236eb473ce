#!/usr/bin/env bash
# GPU training of the emoji model (issue 10) in one device call. Candidate configurations
# train side by side on the one GPU for the same wall time; each run's length (and its λ_ds
# decay) is fitted to its own speed, measured first with all of them running together. Each
# run is stopped cleanly (SIGTERM: a checkpoint), exported (EMA inference networks) and its
# log kept; back on the CPU machine `stargan eval` compares them (models/README.md).
#
#   scripts/device-train.sh [--smoke] [OUT_DIR]
#
# It needs no build: it runs the release binary built on the CPU machine. On the GPU machine:
#   export LD_LIBRARY_PATH=<torch>/lib
#   BIN=.device/stargan DATA=data/emoji64 scripts/device-train.sh "$OUT"
# Environment:
#   BIN      the stargan binary
#   DATA     a `stargan data emoji` folder (train/ and val/)
#   BUDGET   seconds of training for every configuration, all at once (default 360)
#   CONFIGS  which of the configurations below to train (default: all)
# --smoke runs the same steps on the CPU at a tiny size; the test suite runs it.
# Writes OUT_DIR/device-train.json (machine, per configuration: measured s/iteration, planned
# and done iterations, the exported file) and OUT_DIR/<name>.safetensors; a file over 15 MiB
# (the device tool's limit on files coming back is 16 MiB) is split into <file>.part-aa, -ab, …
# (join with cat).
set -uo pipefail

SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
OUT=${1:-device-train}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$HERE/target/release/stargan}
DATA=${DATA:-$HERE/data/emoji64}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# name → model flags and batch. a: the CPU-shipped model's widths; b: twice its channels, style
# and hidden sizes (an exported b is 14.7 MB, within the 25 MB a shipped file may have; four
# times the channels would not be), at the official batch 8 and at 16.
declare -A MODEL=(
  [a8]="--img-size 64 --dim-in 16 --max-conv-dim 64 --style-dim 32 --hidden-dim 128"
  [b8]="--img-size 64 --dim-in 32 --max-conv-dim 128 --style-dim 64 --hidden-dim 256"
  [b16]="--img-size 64 --dim-in 32 --max-conv-dim 128 --style-dim 64 --hidden-dim 256"
)
declare -A BATCH=([a8]=8 [b8]=8 [b16]=16)
EMA=0.999
if [ $SMOKE = 1 ]; then
  DEVICE=cpu
  MODEL=(
    [a8]="--img-size 32 --dim-in 8 --max-conv-dim 16 --style-dim 8 --hidden-dim 16"
    [b8]="--img-size 32 --dim-in 16 --max-conv-dim 32 --style-dim 16 --hidden-dim 32"
  )
  BATCH=([a8]=2 [b8]=2)
  BUDGET=${BUDGET:-10}
  THREADS="--threads 1"
else
  DEVICE=cuda
  BUDGET=${BUDGET:-360}
  THREADS=""
fi
CONFIGS=${CONFIGS:-$(printf '%s\n' "${!MODEL[@]}" | sort | tr '\n' ' ')}
for name in $CONFIGS; do
  [ -n "${MODEL[$name]:-}" ] || { echo "unknown configuration $name (known: ${!MODEL[*]})" >&2; exit 2; }
done
for d in train val; do
  [ -d "$DATA/$d" ] || { echo "$DATA/$d does not exist: run \`stargan data emoji --size 64 --out $DATA\` first" >&2; exit 2; }
done

# The flags of `bench train` for a configuration: a JSON config with its model.
bench_config() {
  local name=$1 json="$WORK/$1.json"
  python3 - "$json" ${MODEL[$name]} <<'PY'
import json, sys
out, flags = sys.argv[1], sys.argv[2:]
model = {flags[i][2:].replace("-", "_"): int(flags[i + 1]) for i in range(0, len(flags), 2)}
model.update(latent_dim=16, w_hpf=0.0, num_domains=4)
json.dump({"model": model}, open(out, "w"))
PY
  echo "--config $json"
}

# 1. Speed, measured with every configuration running at once (as they will train).
echo "measuring the speed of: $CONFIGS" >&2
for name in $CONFIGS; do
  iters=30; [ $SMOKE = 1 ] && iters=2
  "$BIN" bench train $(bench_config "$name") --device $DEVICE --batch ${BATCH[$name]} --iters $iters --warmup 3 $THREADS --json \
    > "$WORK/$name.bench" 2> "$OUT/$name.bench.log" &
done
wait
declare -A ITERS
for name in $CONFIGS; do
  s=$(python3 -c 'import json,sys; print(json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])["s_per_iter"])' "$WORK/$name.bench") \
    || { echo "bench train failed for $name: $OUT/$name.bench.log" >&2; exit 1; }
  echo "$s" > "$WORK/$name.s_per_iter"
  # Iterations that fit in the budget, less 10 % for set-up and the final checkpoint.
  # (In smoke mode, 100 times that: the budget ends the runs, so the clean stop is exercised.)
  ITERS[$name]=$(python3 -c "print(max(2, int(0.9 * $BUDGET / $s) * (100 if $SMOKE else 1)))")
  echo "$name: $s s/iteration → ${ITERS[$name]} iterations" >&2
done

# 2. Training, side by side, each stopped cleanly at the budget (or ending by itself first).
for name in $CONFIGS; do
  n=${ITERS[$name]}
  timeout -s TERM -k 120 "$BUDGET" "$BIN" train --data "$DATA/train" --val "$DATA/val" --out "$WORK/run-$name" \
    ${MODEL[$name]} --batch-size ${BATCH[$name]} --ema-beta $EMA --total-iters "$n" --ds-iter "$n" \
    --save-every 0 --sample-every 0 --eval-every 0 --keep-last 1 --device $DEVICE $THREADS --no-progress \
    > "$OUT/$name.train.log" 2>&1 &
done
wait

# 3. Export, and the record of what ran.
for name in $CONFIGS; do
  ckpt=$(ls "$WORK/run-$name"/checkpoints/*.safetensors 2>/dev/null | sort | tail -n 1)
  if [ -n "$ckpt" ]; then
    "$BIN" export --checkpoint "$ckpt" --out "$OUT/$name.safetensors" $THREADS >> "$OUT/$name.train.log" 2>&1
    basename "$ckpt" .safetensors > "$WORK/$name.done"
    cp "$WORK/run-$name/config.json" "$OUT/$name.config.json"
  fi
done
python3 - "$OUT" "$SMOKE" "$BUDGET" "$WORK" $CONFIGS <<'PY'
import json, os, platform, subprocess, sys
out, smoke, budget, work, names = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3]), sys.argv[4], sys.argv[5:]
def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:
        return f"unavailable: {e}"
def read(path):
    return open(path).read().strip() if os.path.exists(path) else None
configs = {}
for n in names:
    done = read(f"{work}/{n}.done")
    model = f"{n}.safetensors"
    configs[n] = {
        "s_per_iter_together": float(read(f"{work}/{n}.s_per_iter")),
        "iterations_planned": None,
        "iterations_done": int(done) if done else None,
        "model": model if os.path.exists(f"{out}/{model}") else None,
    }
    cfg = read(f"{out}/{n}.config.json")
    if cfg:
        configs[n]["iterations_planned"] = json.loads(cfg)["train"]["total_iters"]
report = {
    "mode": "smoke (CPU, tiny sizes)" if smoke else "GPU",
    "machine": {"host": platform.node(), "gpu": run(["nvidia-smi", "-L"]), "cpu": run(["nproc"])},
    "budget_s": budget,
    "configs": configs,
    "failed": [n for n, c in configs.items() if c["model"] is None],
}
json.dump(report, open(f"{out}/device-train.json", "w"), indent=2)
print(f"wrote {out}/device-train.json; failed: {report['failed'] or 'none'}")
PY
status=$?

# Files over 15 MiB go back in parts.
for f in "$OUT"/*.safetensors; do
  [ -e "$f" ] || continue
  if [ "$(stat -c %s "$f")" -gt $((15 * 1024 * 1024)) ]; then
    split -b 15M "$f" "$f.part-" && rm "$f"
  fi
done
# The logs, in one file.
tar -czf "$OUT/logs.tar.gz" -C "$OUT" $(cd "$OUT" && ls *.log) && rm "$OUT"/*.log
[ $status = 0 ] && python3 -c 'import json,sys; sys.exit(1 if json.load(open(sys.argv[1]))["failed"] else 0)' "$OUT/device-train.json"
