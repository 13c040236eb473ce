#!/usr/bin/env bash
# How a training run degrades beside other work: the same short run (the 64-px emoji
# model of models/README.md, 40 iterations) on an idle machine and beside a busy process,
# with the OpenMP thread count and wait policy varied. Prints one line per case:
# wall seconds, iterations/s.
#
#   scripts/background-load.sh [DATA_DIR]      (default data/emoji64, from `stargan data emoji --size 64`)
#
# The busy process is another copy of the same training (what a second run, a build or
# a test suite does to the machine: all cores, all the time). ONLY="share" runs only the
# --share-cpu cases, ONLY="procs" only one process against --nproc (data parallel on one
# machine, the same global batch); ITERS sets the length of each measured run (default 40),
# WORKERS its data-loading threads per process (default 1; `stargan train`'s default is 2).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/emoji64}
BIN=./target/release/stargan
ITERS=${ITERS:-40}
MODEL="--img-size 64 --dim-in 16 --max-conv-dim 64 --style-dim 32 --hidden-dim 128 --batch-size 4"
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

train() { # out iters [env...]
  local out=$1 iters=$2; shift 2
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OMP_NUM_THREADS "$@" $BIN train --data "$DATA/train" --out "$out" $MODEL --total-iters "$iters" ${EXTRA:-} \
    --sample-every 0 --save-every 0 --no-progress --device cpu --workers "${WORKERS:-1}" >/dev/null 2>&1
}

measure() { # label, env...
  local label=$1; shift
  rm -rf "$tmp/run"
  local t0=$(date +%s.%N)
  train "$tmp/run" "$ITERS" "$@"
  local t1=$(date +%s.%N)
  printf "%-58s %7.1f s  %5.2f it/s\n" "$label" "$(echo "$t1 - $t0" | bc)" "$(echo "$ITERS / ($t1 - $t0)" | bc -l)"
}

busy_start() { # env of the busy process
  ( while true; do rm -rf "$tmp/busy"; train "$tmp/busy" 100000 "$@"; done ) &
  BUSY=$!
  sleep 5
}
busy_stop() { kill $BUSY 2>/dev/null; pkill -f "$tmp/busy" 2>/dev/null || true; wait $BUSY 2>/dev/null || true; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ "${ONLY:-}" = procs ]; then
  # On an idle machine: one process using every core, against one process per core of one
  # thread each (`--nproc`, the same global batch and results).
  for round in 1 2; do
    measure "idle, 1 process, default threads ($round)"
    EXTRA="--nproc $(nproc)" measure "idle, --nproc $(nproc), 1 thread each ($round)"
  done
  exit 0
fi
if [ "${ONLY:-}" != share ]; then
  measure "idle, default threads, OMP_WAIT_POLICY unset"
  measure "idle, 1 thread" OMP_NUM_THREADS=1
  # libgomp's waits: ACTIVE spins without end, PASSIVE sleeps at once, and a bounded spin
  # (policy unset, GOMP_SPINCOUNT) spins that many times before it sleeps.
  SPIN="GOMP_SPINCOUNT=10000"
  measure "idle, default threads, OMP_WAIT_POLICY=PASSIVE" OMP_WAIT_POLICY=PASSIVE
  measure "idle, default threads, $SPIN" $SPIN
  for wait in OMP_WAIT_POLICY=ACTIVE OMP_WAIT_POLICY=PASSIVE "$SPIN"; do
    busy_start $wait
    measure "busy neighbour, default threads, $wait" $wait
    measure "busy neighbour, 1 thread, $wait" OMP_NUM_THREADS=1 $wait
    busy_stop
  done
fi
# --share-cpu: all cores while the machine is idle, the cores others leave while it is busy;
# beside the fixed settings, measured at the same time.
measure "idle, default threads and wait"
EXTRA=--share-cpu measure "idle, --share-cpu"
busy_start
measure "busy neighbour (default threads and wait), default threads and wait"
measure "busy neighbour (default threads and wait), 1 thread" OMP_NUM_THREADS=1
EXTRA=--share-cpu measure "busy neighbour (default threads and wait), --share-cpu"
busy_stop
