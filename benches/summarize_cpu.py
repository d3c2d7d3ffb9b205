"""Summarizes a run of benches/cpu_before_after.sh: medians over the rounds of each binary's
seconds per epoch (itself the median of epochs 2..5), CPU seconds and run-queue wait per epoch,
GFLOP/s and share of the peak. The peak is the best FMA-loop figure seen in the whole run (a
busy machine only ever slows the loop down).

A second table keeps the rounds in which neither binary waited for a core (under 10 ms per
epoch): on a machine shared with other work, a one-thread "before" does not notice a
neighbour on the other core, while a two-thread "after" loses half of its cores to it.

A third gives each round's after / before ratio, paired: median and quartiles.

    python3 benches/summarize_cpu.py benches/results/<run>
"""
import json
import os
import statistics
import sys

run = sys.argv[1]
records = {}
for side in ("before", "after"):
    with open(os.path.join(run, f"{side}.log")) as f:
        records[side] = [json.loads(line) for line in f if line.startswith("{")]
peaks = {}
for side in records.values():
    for r in side:
        if r["kernel"] == "fma_peak":
            peaks[r["threads"]] = max(peaks.get(r["threads"], 0.0), r["gflops"])
for threads, gflops in sorted(peaks.items()):
    print(f"FMA peak, {threads} thread(s): {gflops:.1f} GFLOP/s (best of the run)")
peak = peaks[max(peaks)]
batches = sorted({r["batch"] for r in records["after"] if r["kernel"] == "cpu_epoch"}, reverse=True)


def epochs(side, batch):
    return [r for r in records[side] if r["kernel"] == "cpu_epoch" and r["batch"] == batch]


def table(title, keep):
    print(f"\n{title}")
    print("| batch | run | rounds | s/epoch (median) | min | max | CPU s/epoch | wait s/epoch | GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for batch in batches:
        pairs = [p for p in zip(epochs("before", batch), epochs("after", batch)) if keep(p)]
        for i, side in enumerate(("before", "after")):
            rs = [p[i] for p in pairs]
            if not rs:
                continue
            secs = [r["seconds_per_epoch"] for r in rs]
            med = statistics.median(secs)
            cpu = statistics.median(r["cpu_seconds_per_epoch"] for r in rs)
            wait = statistics.median(r["runqueue_wait_seconds_per_epoch"] for r in rs)
            gflops = rs[0]["gflop_per_epoch"] / med
            print(f"| {batch} | {side} | {len(rs)} | {med:.3f} | {min(secs):.3f} | {max(secs):.3f} | "
                  f"{cpu:.3f} | {wait:.3f} | {gflops:.1f} | {100 * gflops / peak:.0f} |")


table("All rounds", lambda p: True)
table("Rounds in which neither run waited for a core",
      lambda p: all(r["runqueue_wait_seconds_per_epoch"] < 0.010 for r in p))

# Each round's after / before, paired: the machine's slow spells hit both runs of a round,
# so the ratios spread less than the seconds do.
print("\nPaired ratios, after / before, over all rounds")
print("| batch | rounds | median | lower quartile | upper quartile |")
print("|---|---|---|---|---|")
for batch in batches:
    ratios = sorted(a["seconds_per_epoch"] / b["seconds_per_epoch"]
                    for b, a in zip(epochs("before", batch), epochs("after", batch)))
    if not ratios:
        continue
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(f"| {batch} | {len(ratios)} | {statistics.median(ratios):.3f} | {q[0]:.3f} | {q[2]:.3f} |")
