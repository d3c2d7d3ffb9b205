#!/usr/bin/env bash
# Runs wgtrain's benchmark harness and the peer programs of ../shared/peers (Burn on the same
# lavapipe adapter and on the CPU, PyTorch and Keras on the CPU) one after another in the same
# run, so the ratios in BENCHMARKS.md compare numbers taken minutes apart on the same machine.
#
#   bash benches/compare_peers.sh [OUT_DIR]          # logs and JSON lines land in OUT_DIR
#   PEERS_WORK=/path/with/peers bash benches/compare_peers.sh   # reuse a built peers copy
#
# First run: the peers' venv (tensorflow-cpu, torch: several GB) and Burn's build (15-25 min on
# 2 cores) are made in the work folder. Nothing else should run meanwhile: 2 cores.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/peer-run}
# Absolute, since the peers run from the work folder.
mkdir -p "$out" && out=$(cd "$out" && pwd)
export MNIST_DIR="$root/data/mnist"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
work=${PEERS_WORK:-$(mktemp -d)}
[ -d "$work/burn_mlp" ] || cp -r "$root/../shared/peers/." "$work/"
cd "$work" || exit 1
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q tensorflow-cpu numpy torch; }
[ -x burn_mlp/target/release/burn_mlp ] || (cd burn_mlp && cargo build --release -q)
(cd "$root" && cargo build --release -q --example bench --example mnist)

run() { # name, command...
  local name=$1; shift
  echo "== $name"
  "$@" > "$out/$name.log" 2>&1
  grep -E '^RESULT|"kernel"' "$out/$name.log" | cut -c1-400
}
run wgtrain-bench "$root/target/release/examples/bench" --json --epochs 7
run wgtrain-demo "$root/target/release/examples/mnist" --summary-json "$out/wgtrain-demo.json"
run torch-tensor-b128 .venv/bin/python torch_mlp.py --batch 128 --epochs 4 --loader tensor
run torch-tensor-b32 .venv/bin/python torch_mlp.py --batch 32 --epochs 4 --loader tensor
run keras-b128 .venv/bin/python keras_mlp.py --batch 128 --epochs 4
run keras-b32 .venv/bin/python keras_mlp.py --batch 32 --epochs 4
B=burn_mlp/target/release/burn_mlp
run burn-wgpu-host-b128 $B --device wgpu --batch 128 --epochs 3 --data host --mnist "$MNIST_DIR"
run burn-flex-host-b128 $B --device flex --batch 128 --epochs 4 --data host --mnist "$MNIST_DIR"
run burn-flex-device-b32 $B --device flex --batch 32 --epochs 4 --data device --mnist "$MNIST_DIR"
echo "logs in $out"
