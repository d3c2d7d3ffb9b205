#!/bin/bash
# Usage: cargo build --release --example bench && PYTHON=venv/bin/python bash benches/wide_model.sh
# (PyTorch in that venv: pip install torch numpy).
# The wide model (784-1024-1024-10) on the first 10,000 MNIST images, validation on the 10,000
# test images, 3 epochs (median of epochs 2-3): wgtrain CPU, lavapipe, GL; PyTorch CPU. Same run.
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg}"; mkdir -p "$XDG_RUNTIME_DIR"
out=benches/results/$(date +%F)-wide
mkdir -p $out
for b in 128 512; do
  target/release/examples/bench --only train --hidden 1024,1024 --train-rows 10000 --batches $b --epochs 3 --adapter all --json 2>&1 | grep train_epoch >> $out/wgtrain.jsonl
  ${PYTHON:-python3} benches/torch_wide_mlp.py --mnist data/mnist --hidden 1024,1024 --train-rows 10000 --batch $b --epochs 3 >> $out/torch.jsonl 2>>$out/torch.err
done
uptime >> $out/load.txt
