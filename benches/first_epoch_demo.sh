#!/usr/bin/env bash
# The demo's first epoch on a machine that never ran wgtrain, per adapter: each "cold" run gets
# a new, empty Mesa shader cache (MESA_SHADER_CACHE_DIR) and wgtrain tuning cache
# (XDG_CACHE_HOME); each "warm" run reuses caches that an earlier run filled. One line per
# run: adapter, caches, the demo's epoch-1 seconds, the whole process's seconds (MNIST loading
# and device set-up included), and the load average (this machine is shared).
#
#   bash benches/first_epoch_demo.sh [RUNS=3] [DEMO=target/release/examples/mnist]
#   VK_ICD_FILENAMES=/nonexistent bash benches/first_epoch_demo.sh   # a machine without Vulkan
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
demo=${2:-target/release/examples/mnist}
[ -x "$demo" ] || cargo build --release --example mnist
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/wgtrain-xdg-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

# adapter, Mesa cache folder, XDG cache folder, label
one() {
  local start end out
  start=$(date +%s.%N)
  out=$(MESA_SHADER_CACHE_DIR="$2" XDG_CACHE_HOME="$3" "$demo" --epochs 1 --adapter "$1" 2>&1)
  end=$(date +%s.%N)
  local epoch
  epoch=$(echo "$out" | sed -n 's/^epoch  1:.*| \([0-9.]*\) s,.*/\1/p')
  echo "$1 $4 epoch_s=${epoch:-failed} process_s=$(awk "BEGIN{printf \"%.2f\", $end - $start}") load=$(cut -d' ' -f1 /proc/loadavg)"
}

adapters="vulkan gl"
[ "${VK_ICD_FILENAMES:-}" = /nonexistent ] && adapters="gl"
warm=$(mktemp -d)
trap 'rm -rf "$warm"' EXIT
for a in $adapters; do
  mkdir -p "$warm/$a/mesa" "$warm/$a/xdg"
  one "$a" "$warm/$a/mesa" "$warm/$a/xdg" fill >/dev/null
done
for _ in $(seq "$runs"); do
  for a in $adapters; do
    cold=$(mktemp -d)
    mkdir -p "$cold/mesa" "$cold/xdg"
    one "$a" "$cold/mesa" "$cold/xdg" cold
    rm -rf "$cold"
    one "$a" "$warm/$a/mesa" "$warm/$a/xdg" warm
  done
done
