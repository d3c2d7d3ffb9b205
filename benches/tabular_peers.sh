#!/usr/bin/env bash
# The three shipped tables (data/tabular) trained by PyTorch CPU, Keras (TensorFlow CPU) and wgtrain (the CPU
# executor, Vulkan lavapipe, GL llvmpipe) in one run, on the same split files, with the same recipe: 64-64 ReLU,
# Adam 1e-3, batch 32, at most 200 epochs, early stopping on val_loss with patience 10 and the best weights
# restored, 10 % of the training file held out (each framework draws its own 10 %, seeded). Prints one table of
# medians over the seeds: held-out accuracy (R² for diabetes), seconds per epoch (median after the first epoch,
# validation included) and epochs run. BENCHMARKS.md's "Tabular data sets" section is its output.
#
#   bash benches/tabular_peers.sh [OUT_DIR]        # JSON lines and the split files land in OUT_DIR
#   PEERS_PY=/path/to/python bash benches/tabular_peers.sh
#   SEEDS="0 1 2 3 4" bash benches/tabular_peers.sh      # other seeds (default 0 1 2)
#
# PEERS_PY: a Python with torch, tensorflow-cpu, pandas and numpy (default /work/venv-peers/bin/python; make one
# with `python3 -m venv V && V/bin/pip install torch pandas numpy tensorflow-cpu`).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/tabular-peers}
py=${PEERS_PY:-/work/venv-peers/bin/python}
seeds=${SEEDS:-"0 1 2"}
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
mkdir -p "$out"
(cd "$root" && cargo build --release -q --example tabular)
tab="$root/target/release/examples/tabular"
: > "$out/results.jsonl"

# name, target column, task
for spec in "diabetes target regress" "breast_cancer diagnosis binary" "digits digit classify"; do
  set -- $spec; name=$1; target=$2; task=$3; dir="$out/$name"
  "$tab" --data "$root/data/tabular/$name.csv" --target "$target" --task "$task" --split-seed 0 \
    --split-dir "$dir" --split-only
  files=(--train "$dir/train.csv" --test "$dir/test.csv" --target "$target" --task "$task")
  for seed in $seeds; do
    row() { echo "{\"data\": \"$name\", \"framework\": \"$1\", \"seed\": $seed, \"result\": $2}" >> "$out/results.jsonl"; }
    row torch "$("$py" "$root/benches/torch_tabular.py" "${files[@]}" --seed "$seed")"
    row keras "$("$py" "$root/benches/keras_tabular.py" "${files[@]}" --seed "$seed" 2> /dev/null)"
    for backend in cpu lavapipe gl; do
      row "wgtrain-$backend" "$("$tab" "${files[@]}" --backend "$backend" --seed "$seed")"
    done
  done
done

python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs)
print("| data set | framework | held-out quality (median) | per seed | s/epoch (median) | epochs run |")
print("|---|---|---|---|---|---|")
for data in dict.fromkeys(r["data"] for r in rows):
    for fw in dict.fromkeys(r["framework"] for r in rows):
        rs = [r["result"] for r in rows if r["data"] == data and r["framework"] == fw]
        metric = next(m for m in ("r2", "accuracy", "binary_accuracy") if m in rs[0])
        q = [x[metric] for x in rs]
        print(f"| {data} | {fw} | {metric} {med(q):.3f} | {', '.join(f'{v:.3f}' for v in q)} "
              f"| {med([x['seconds_per_epoch'] for x in rs]) * 1e3:.2f} ms "
              f"| {', '.join(str(x['epochs_run']) for x in rs)} |")
PY
