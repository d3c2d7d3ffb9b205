#!/usr/bin/env bash
# Same-run, interleaved before/after timing of the CPU executor (examples/cpu_bench.rs):
# each round runs the "before" binary, then the "after" one, so a busy spell of the shared
# machine hits both. Raw JSON records go to OUT/{before,after}.log; summarize with
# python3 benches/summarize_cpu.py OUT.
#
#   bash benches/cpu_before_after.sh BEFORE_BIN AFTER_BIN ROUNDS OUT
#
# Build the "before" binary from the older commit in a folder of its own, e.g.
#   mkdir /tmp/before && git archive <commit> | tar -x -C /tmp/before &&
#   cp examples/cpu_bench.rs /tmp/before/examples/ &&
#   (cd /tmp/before && cargo build --release --example cpu_bench)
set -euo pipefail
before=$1 after=$2 rounds=$3 out=$4
mkdir -p "$out"
uptime > "$out/uptime.log"
for i in $(seq "$rounds"); do
  "$before" --json --epochs 5 >> "$out/before.log"
  "$after" --json --epochs 5 >> "$out/after.log"
  uptime >> "$out/uptime.log"
done
