#!/usr/bin/env bash
# Data parallel across processes on this machine: the bench's `train_epoch_mpi` records for
# 1, 2 and 4 ranks of one replica each, on the CPU backend and on lavapipe, the scaling
# efficiency taken against the 1-rank run of the same backend. On one machine the ranks
# share its cores and talk over shared memory: the figures measure the scheme's overhead,
# not a speed-up (BENCHMARKS.md, "Across processes").
#
#     bash benches/mpi_scaling.sh [output folder]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benches/results/$(date +%F)-mpi}
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/wgtrain-xdg-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cargo build --release --features mpi --example bench
launch=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && launch+=(--allow-run-as-root)
for local in cpu vulkan; do
  base=""
  for np in 1 2 4; do
    args=(--only mpi --json --mpi-local "$local" --epochs 3)
    [ -n "$base" ] && args+=(--mpi-baseline "$base")
    uptime >>"$out/load.txt"
    "${launch[@]}" -np "$np" target/release/examples/bench "${args[@]}" | tee -a "$out/train_epoch_mpi.jsonl"
    if [ "$np" = 1 ]; then
      base=$(tail -1 "$out/train_epoch_mpi.jsonl" | python3 -c 'import json, sys; print(json.load(sys.stdin)["samples_per_second"])')
    fi
  done
done
