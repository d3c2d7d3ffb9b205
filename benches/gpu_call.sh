#!/bin/bash
# Issue #13's GPU measurements in ONE call of the `device` tool (../shared/GPU.md): run
# `bash benches/gpu_prepare.sh` here first, then the device's `run` with
#     carry [".gl", ".gpu"], timeout_s 570 (the steps' own limits, each with 5 s to exit after its signal, add up to 555 s),
#     command "bash benches/gpu_call.sh $OUT"
# It writes six files under OUT (the tool brings back at most eight):
#   tests.log     the kernel tests (every variant's bits against the naive kernel's, every kernel
#                 against the CPU reference) and the training tests, run on the GPU
#   wgtrain.jsonl bench records: the step's launches, 1024^3 and the step's products, MNIST
#                 epochs at b128/b32 (with validation), the wide model 784-1024-1024-10 at b128/b512
#   demo.json     the MNIST demo's summary (its defaults: early stopping, test accuracy)
#   torch.jsonl   PyTorch on the same GPU in the same call: eager, whole-step CUDA graphs and
#                 torch.compile(mode="reduce-overhead"), on the MNIST job and the wide model
#   summary.md    the table for BENCHMARKS.md (benches/summarize_gpu.py)
#   run.log       every step's stderr, the adapters, nvidia-smi, the times each step took
# Each step has its own time limit, so one that hangs costs its limit and not the others.
# To check the script on a machine without a GPU: QUICK=1 TORCH_DEVICE=cpu PYTHON=venv/bin/python
# (small runs, PyTorch on the CPU where only its eager mode can run).
set -u
out=${1:?usage: bash benches/gpu_call.sh OUT_DIR}
mkdir -p "$out"
log=$out/run.log
exec 2>>"$log"
say() { echo "[$(date +%T)] $*" >>"$log"; }

# The loaders, where the machine has none (the device image has none; a dev machine with Mesa has).
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export XDG_RUNTIME_DIR=/tmp
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
chmod +x .gpu/* 2>/dev/null
# Test fixtures and the tuner's shipped choices are found from the build's path.
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
nvidia-smi >>"$log" 2>&1
py=${PYTHON:-python3}
dev=${TORCH_DEVICE:-cuda}
if [ -n "${QUICK:-}" ]; then
  mnist=(--epochs 2 --batches 128); wide=(--epochs 2 --batches 512); rows=(--train-rows 2000); quick=(--quick)
  only=(every_variant_gives_the_same_bits_as_naive)
else
  mnist=(--epochs 6 --batches 128,32); wide=(--epochs 4 --batches 128,512); rows=(); quick=(); only=()
fi
say "start"

# 1. Correctness on this GPU before any figure: the library's unit tests (every kernel and
#    matmul variant) and the training tests (GPU against the CPU reference, bit-identical runs).
for t in "lib 90" "training 45"; do
  set -- $t
  say "tests: $1"
  timeout -k 5 "$2" ".gpu/test_$1" --test-threads 1 "${only[@]}" >>"$out/tests.log" 2>&1
  echo "== test_$1 exit $?" >>"$out/tests.log"
done

# 2. The MNIST job, wgtrain then PyTorch: the step's launches and products, epochs at b128/b32.
say "bench: step, matmul, MNIST"
timeout -k 5 100 .gpu/bench --json --adapter best --only step,matmul,train "${mnist[@]}" "${quick[@]}" \
  >>"$out/wgtrain.jsonl"
say "torch: MNIST"
timeout -k 5 130 "$py" benches/torch_gpu_mlp.py --device "$dev" --modes eager,graphs,compile "${mnist[@]}" \
  >>"$out/torch.jsonl"

# 3. The wide model (all 60,000 rows on the GPU), wgtrain then PyTorch; then the demo.
say "bench: wide model"
timeout -k 5 40 .gpu/bench --json --adapter best --no-cpu --only train --hidden 1024,1024 "${wide[@]}" "${rows[@]}" \
  >>"$out/wgtrain.jsonl"
say "torch: wide model"
timeout -k 5 80 "$py" benches/torch_gpu_mlp.py --device "$dev" --modes eager,graphs,compile "${wide[@]}" \
  --hidden 1024,1024 "${rows[@]}" >>"$out/torch.jsonl"
say "demo"
timeout -k 5 35 .gpu/mnist --adapter best --summary-json "$out/demo.json" >>"$log"

say "summary"
"$py" benches/summarize_gpu.py "$out" >"$out/summary.md"
say "done"
cat "$out/summary.md"  # also in the tool's output, should $OUT not come back
