"""Summarizes one call of benches/gpu_call.sh: wgtrain's bench records and PyTorch's lines from
the same call, as the markdown table BENCHMARKS.md quotes (ms per epoch with validation, launches
and kernel time per step, GFLOP/s of the wide model, ratios within the call), and the tests' tally.

    python3 benches/summarize_gpu.py OUT_DIR
"""
import json
import os
import re
import sys


def lines(path):
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path, errors="replace"):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def gflop_per_epoch(hidden, train_rows, test_rows=10000):
    """6 FLOPs per weight per training image, 2 per validation image (BENCHMARKS.md's count)."""
    widths = [784] + list(hidden) + [10]
    weights = sum(a * b for a, b in zip(widths, widths[1:]))
    return 2 * weights * (3 * train_rows + test_rows) / 1e9


run = sys.argv[1] if len(sys.argv) > 1 else "."
ours = lines(os.path.join(run, "wgtrain.jsonl"))
torch = lines(os.path.join(run, "torch.jsonl"))

tests = os.path.join(run, "tests.log")
if os.path.exists(tests):
    text = open(tests, errors="replace").read()
    print("## Tests on this GPU")
    for m in re.finditer(r"test result: (\w+)\. (\d+) passed; (\d+) failed", text):
        print(f"- {m.group(1)}: {m.group(2)} passed, {m.group(3)} failed")
    for m in re.finditer(r"== (\S+) exit (\d+)", text):
        print(f"- {m.group(1)}: exit {m.group(2)}")
    print()

steps = [r for r in ours if r.get("kernel") == "step_launch"]
if steps:
    print("## One MNIST step at batch 128 (kernel time per launch)")
    for r in steps:
        print(f"- {r['launch']}: {r['name']} {r['seconds'] * 1e6:.1f} us ({r['timer']})")
    print(f"- total: {len(steps)} launches, {sum(r['seconds'] for r in steps) * 1e6:.1f} us of kernel time")
    print()

mm = [r for r in ours if r.get("kernel") == "matmul"]
if mm:
    print("## Products (GFLOP/s)")
    for r in mm:
        print(f"- {r['form']} {r['m']}x{r['n']}x{r['k']} {r['variant']}: {r['gflops']:.1f}")
    print()

print("## Training: ms per epoch with validation (median of epochs 2..N), same call")
print()
print("us/step is the epoch's time (its validation pass included) over its training steps. The ratio")
print("is wgtrain's GPU epoch over the PyTorch row's.")
print()
print("| model | batch | executor | ms/epoch | us/step | launches/step | GFLOP/s | test acc | wgtrain GPU / this |")
print("|---|---|---|---|---|---|---|---|---|")
trained = [r for r in ours if r.get("kernel") == "train_epoch"]
keys = [(tuple(r["hidden"]), r["batch"], r["train_rows"]) for r in trained]
keys += [(tuple(p["hidden"]), p["batch"], p["train_rows"]) for p in torch if "hidden" in p]
for key in dict.fromkeys(keys):
    hidden, batch, rows = key
    model = "784-" + "-".join(map(str, hidden)) + "-10"
    steps_per_epoch = -(-rows // batch)
    gf = gflop_per_epoch(hidden, rows)
    gpu_ms = None
    for r in (r for r in trained if (tuple(r["hidden"]), r["batch"], r["train_rows"]) == key):
        ms = r["seconds_per_epoch"] * 1e3
        if r["backend"] != "cpu" and gpu_ms is None:
            gpu_ms = ms
        who = "CPU executor" if r["backend"] == "cpu" else f"{r['adapter']} ({r['backend']})"
        acc = r["test_accuracy"]  # null where it was NaN
        acc = f"{acc:.4f}" if acc is not None else "n/a"
        print(f"| {model} | {batch} | wgtrain, {who} | **{ms:.1f}** | {ms * 1e3 / steps_per_epoch:.1f} | "
              f"{r['dispatches_per_step']} | {gf / r['seconds_per_epoch']:.0f} | {acc} | |")
    for p in torch:
        if (tuple(p.get("hidden", ())), p.get("batch"), p.get("train_rows")) != key:
            continue
        if "error" in p:
            done = p.get("epoch_s", [])
            print(f"| {model} | {batch} | PyTorch {p['mode']} | failed after {len(done)} epochs {done}: "
                  f"{p['error'][:80]} | | | | | |")
            continue
        pms = p["median_s_ep2plus"] * 1e3
        ratio = f"**{gpu_ms / pms:.2f}**" if gpu_ms else ""
        print(f"| {model} | {batch} | PyTorch {p['torch']} {p['mode']} ({p['device']}) | {pms:.1f} | "
              f"{pms * 1e3 / steps_per_epoch:.1f} | | {p['gflops']:.0f} | {p['test_acc'][-1]} | {ratio} |")
