#!/bin/bash
# Usage: cargo build --release --example bench && PYTHON=venv/bin/python bash benches/wide_model.sh [OUT_DIR]
# (PyTorch in that venv: pip install torch numpy).
# The wide model (784-1024-1024-10) on the first 10,000 MNIST images, validation on the 10,000
# test images, 3 epochs (median of epochs 2-3): wgtrain CPU, lavapipe, GL; PyTorch CPU. Same run.
# BURN=path/to/burn_mlp adds Burn 0.22 on lavapipe (wgpu) and on the CPU (flex): the peer of
# ../shared/peers/burn_mlp with benches/burn_mlp_hidden.patch applied (--hidden, --train-rows).
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg}"; mkdir -p "$XDG_RUNTIME_DIR"
out=${1:-benches/results/$(date +%F)-wide}
mkdir -p $out
for b in 128 512; do
  target/release/examples/bench --only train --hidden 1024,1024 --train-rows 10000 --batches $b --epochs 3 --adapter all --json 2>&1 | grep train_epoch >> $out/wgtrain.jsonl
  ${PYTHON:-python3} benches/torch_wide_mlp.py --mnist data/mnist --hidden 1024,1024 --train-rows 10000 --batch $b --epochs 3 >> $out/torch.jsonl 2>>$out/torch.err
  if [ -n "${BURN:-}" ]; then
    for d in wgpu flex; do
      "$BURN" --device $d --hidden 1024,1024 --train-rows 10000 --batch $b --epochs 3 --data device \
        --mnist data/mnist > $out/burn-$d-b$b.log 2>&1
    done
  fi
done
uptime >> $out/load.txt
