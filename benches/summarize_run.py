"""Summarizes one run of benches/compare_peers.sh: wgtrain's JSON records and the peers'
RESULT lines, with the ratios BENCHMARKS.md quotes.

    python3 benches/summarize_run.py benches/results/<run>
"""
import glob
import json
import os
import sys

run = sys.argv[1] if len(sys.argv) > 1 else "target/peer-run"
records, peers = [], {}
for path in sorted(glob.glob(os.path.join(run, "*.log"))):
    for line in open(path, errors="replace"):
        line = line.strip()
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            peers[r["peer"]] = r
        elif line.startswith("{") and '"kernel"' in line:
            records.append(json.loads(line))

print("## wgtrain training (seconds per epoch incl. validation on the 10k test images)")
ours = {}
for r in records:
    if r["kernel"] == "train_epoch":
        key = (r["adapter"] if r["backend"] == "cpu" else r["backend"], r["batch"])
        ours[key] = r
        print(f"  {key[0]:<8} b{r['batch']:<4} {r['seconds_per_epoch']:.3f} s/epoch, first {r['first_epoch_seconds']:.2f} s "
              f"(setup {r.get('setup_seconds', 0):.2f}), {r['dispatches_per_step']} launches/step, acc {r['test_accuracy']:.4f}")
print("## peers (median of epochs 2..N; eval time apart where the peer reports it)")
for name, r in peers.items():
    extra = f", train-only {r['median_train_only_s_ep2plus']}" if "median_train_only_s_ep2plus" in r else ""
    ev = r.get("eval_s")
    ev = f", eval {sorted(ev[1:])[len(ev[1:]) // 2]:.3f}" if ev and len(ev) > 1 else ""
    print(f"  {name:<22} {r['median_s_ep2plus']:.3f} s/epoch (first {r['epoch_s'][0]:.2f}{ev}{extra}), acc {r['test_acc'][-1]}")


def ratio(ours_key, peer):
    if ours_key in ours and peer in peers:
        a, b = ours[ours_key]["seconds_per_epoch"], peers[peer]["median_s_ep2plus"]
        print(f"  {ours_key[0]} b{ours_key[1]} / {peer}: {a:.3f} / {b:.3f} = {a / b:.2f}")


print("## ratios (wgtrain / peer, same run)")
ratio(("vulkan", 128), "burn-wgpu-host-b128")
for peer in ("burn-flex-host-b128", "torch-tensor-b128", "keras-b128"):
    ratio(("cpu", 128), peer)
for peer in ("burn-flex-device-b32", "torch-tensor-b32", "keras-b32"):
    ratio(("cpu", 32), peer)
print("## step launches (ms)")
for r in records:
    if r["kernel"] == "step_launch":
        print(f"  {r['backend']:<6} {r['launch']:>2} {r['name']:<14} {r['seconds'] * 1e3:.3f} ({r['timer']})")
print("## matmul GFLOP/s")
for r in records:
    if r["kernel"] == "matmul":
        print(f"  {r['backend']:<6} {r['form']:<4} {r['m']}x{r['n']}x{r['k']:<5} {r['variant']:<14} {r['gflops']:.2f}")
print("## data parallel")
for r in records:
    if r["kernel"] == "train_epoch_parallel":
        print(f"  {r['replicas']} replicas {r['samples_per_second']:.0f} samples/s eff {r['scaling_efficiency']:.2f} "
              f"reduce {r['reduce_ms_per_step']:.3f} compute+download {r['compute_and_download_ms_per_step']:.3f} "
              f"upload {r['upload_ms_per_step']:.3f} ms/step")
