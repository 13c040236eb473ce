#!/usr/bin/env bash
# Runs one fuzz target with AFL++ (cargo-afl) for about N executions and prints its
# statistics. Build first (docs/reliability.md):
#   cd fuzz && VIRTUAL_ENV=$PWD/../.venv LIBTORCH_USE_PYTORCH=1 cargo afl build --release
#
#   scripts/fuzz.sh TARGET [EXECUTIONS]      TARGET: ckpt, safetensors, image, numpy
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=$1
EXECS=${2:-1000000}
FIX=${STARGAN_FIXTURES:-../shared/fixtures}/parity
[ -d "$FIX" ] || FIX=${STARGAN_FIXTURES:-../shared/fixtures}
# The fuzz binaries link libtorch but carry no rpath to it.
TORCH_LIB=$(ls -d .venv/lib/python3*/site-packages/torch/lib | head -n 1)
export LD_LIBRARY_PATH=$PWD/$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
OUT=fuzz/out/$TARGET
SEEDS=$OUT/seeds
mkdir -p "$SEEDS"
case $TARGET in
  ckpt) cp "$FIX"/*.ckpt "$SEEDS"/ ;;
  safetensors) cp "$FIX"/*.forward.safetensors "$FIX"/afhq_tiny.train.safetensors "$SEEDS"/
    [ -f models/emoji64.safetensors ] && [ "$(stat -c %s models/emoji64.safetensors)" -lt 1000000 ] && cp models/emoji64.safetensors "$SEEDS"/ || true ;;
  image) cp assets/examples/emoji/noto/1f339.png assets/examples/emoji/fluent3d/1f980.png "$SEEDS"/
    # JPEG and WebP versions through our own writer (the format follows the extension).
    ./target/release/examples/montage "$SEEDS/rose.jpg" 1 assets/examples/emoji/noto/1f339.png
    ./target/release/examples/montage "$SEEDS/rose.webp" 1 assets/examples/emoji/noto/1f339.png ;;
  numpy) python3 fuzz/make_numpy_seed.py > "$SEEDS/weights.pkl" ;;
  *) echo "unknown target $TARGET (ckpt, safetensors, image, numpy)"; exit 2 ;;
esac
# -t: a hang is an input taking over a second. -m: the address-space limit; libtorch and
# the CUDA libraries map ~3 GB at start, so an allocation of ~3 GB more is a crash.
AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1 \
  cargo afl fuzz -i "$SEEDS" -o "$OUT/afl" -t 1000 -m 6144 -E "$EXECS" "fuzz/target/release/$TARGET" \
  > "$OUT/afl.log" 2>&1 || { echo "afl-fuzz failed, see $OUT/afl.log"; tail -20 "$OUT/afl.log"; exit 1; }
S=$OUT/afl/default/fuzzer_stats
printf "%s: " "$TARGET"
grep -E "^(execs_done|run_time|execs_per_sec|corpus_count|bitmap_cvg|edges_found|total_edges|saved_crashes|saved_hangs)" "$S" \
  | sed 's/ *: /=/' | tr '\n' ' '
echo
