#!/usr/bin/env bash
# Everything the GPU figures need, in one call on a GPU machine (H100/H200), writing one
# JSON and the logs:
#   - the CUDA parity tests (float32, TF32 off, explicit R1 graph against double backward),
#     with STARGAN_REQUIRE_CUDA=1 so that a missing GPU fails;
#   - bench train, AFHQ and CelebA-HQ, 256 px, batch 8, TF32 and bf16 (s/iteration, peak
#     memory, data-wait fraction);
#   - bench infer at batch 1 and 32;
#   - bench devices: the same networks on the GPU and the CPU;
#   - bench allreduce between two processes (NCCL with two GPUs, else Gloo on one).
# It needs no build: it runs the release binary and the test binaries built on the CPU
# machine (`make device-bundle` puts them, the fixtures and this script in .device/).
#
#   scripts/device-check.sh [--smoke] [OUT_DIR]
#
# --smoke runs the same steps on the CPU at a tiny size; the test suite runs it.
# Environment: BIN (the stargan binary), TEST_DIR (the folder of the test binaries),
# STARGAN_FIXTURES (the parity fixtures).
set -uo pipefail

SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
OUT=${1:-device-check}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$HERE/target/release/stargan}
TEST_DIR=${TEST_DIR:-$HERE/target/release/deps}
mkdir -p "$OUT/logs"
STEPS="$OUT/steps.jsonl"
: > "$STEPS"

if [ $SMOKE = 1 ]; then
  DEVICE=cpu
  SIZE="--img-size 32 --dim-in 16 --max-conv-dim 32"
  TRAIN="--batch 2 --iters 1 --warmup 0"
  INFER_ITERS="--iters 1 --warmup 0"
  BATCHES="1 2"
  PRESETS="afhq"
  LIMIT=600
else
  DEVICE=cuda
  SIZE=""
  TRAIN="--batch 8 --iters 20 --warmup 5"
  INFER_ITERS="--iters 10 --warmup 3"
  BATCHES="1 32"
  PRESETS="afhq celeba-hq"
  LIMIT=150
  export STARGAN_REQUIRE_CUDA=1
fi

# step NAME JSON? COMMAND...: runs it with a time limit, logs its output, records the
# exit status, the seconds and (when JSON=json) its last stdout line as the result.
step() {
  local name=$1 kind=$2; shift 2
  local log="$OUT/logs/$name.log" start end rc
  start=$(date +%s.%N)
  timeout "$LIMIT" "$@" > "$log.out" 2> "$log"
  rc=$?
  end=$(date +%s.%N)
  cat "$log.out" >> "$log"
  python3 - "$name" "$kind" "$rc" "$start" "$end" "$log.out" >> "$STEPS" <<'PY'
import json, sys
name, kind, rc, start, end, out = sys.argv[1:]
result = None
if kind == "json":
    lines = [l for l in open(out).read().splitlines() if l.strip().startswith("{")]
    result = json.loads(lines[-1]) if lines else None
print(json.dumps({"step": name, "rc": int(rc), "seconds": round(float(end) - float(start), 2), "result": result}))
PY
  rm -f "$log.out"
  echo "$name: exit $rc" >&2
}

CUDA_TEST=$(ls "$TEST_DIR"/cuda-* 2>/dev/null | grep -v '\.d$' | head -n 1)
if [ -n "$CUDA_TEST" ]; then
  step cuda_parity_tests text "$CUDA_TEST" --ignored --nocapture --test-threads 1
else
  echo "no cuda test binary in $TEST_DIR" > "$OUT/logs/cuda_parity_tests.log"
  echo '{"step": "cuda_parity_tests", "rc": 127, "seconds": 0, "result": null}' >> "$STEPS"
fi
for preset in $PRESETS; do
  for precision in fp32 bf16; do
    step "train_${preset}_${precision}" json "$BIN" bench train --preset "$preset" $SIZE --device $DEVICE \
      --precision $precision $TRAIN --json
  done
done
for b in $BATCHES; do
  step "infer_afhq_batch$b" json "$BIN" bench infer --preset afhq $SIZE --device $DEVICE --batch "$b" $INFER_ITERS --json
done
step devices_afhq json "$BIN" bench devices --preset afhq $SIZE --device $DEVICE --json
step allreduce_afhq json "$BIN" bench allreduce --preset afhq $SIZE --nproc 2 --device $DEVICE --iters 5 --json

python3 - "$OUT" "$SMOKE" <<'PY'
import json, platform, subprocess, sys
out, smoke = sys.argv[1], sys.argv[2] == "1"
steps = [json.loads(l) for l in open(f"{out}/steps.jsonl")]
def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:
        return f"unavailable: {e}"
report = {
    "mode": "smoke (CPU, tiny sizes)" if smoke else "GPU",
    "machine": {"host": platform.node(), "gpu": run(["nvidia-smi", "-L"]), "cpu": run(["nproc"])},
    "failed": [s["step"] for s in steps if s["rc"] != 0],
    "steps": {s["step"]: s for s in steps},
}
json.dump(report, open(f"{out}/device-check.json", "w"), indent=2)
print(f"wrote {out}/device-check.json; failed steps: {report['failed'] or 'none'}")
PY
