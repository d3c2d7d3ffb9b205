"""The same job as wgtrain's bench, in PyTorch eager on a CUDA GPU: 784-64(ReLU)-10, Adam
1e-3, full MNIST (the bundled data/mnist), the whole training set preloaded on the GPU, a
randperm per epoch, and a validation pass over the 10,000 test images each epoch (as
wgtrain's epoch includes one). Prints one JSON line per batch size.

    python3 benches/torch_gpu_mlp.py [--epochs 5] [--batches 128,32] [--data data/mnist]
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batches", default="128,32")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    ap.add_argument("--device", default="cuda", help="cuda, or cpu to check the script")
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    load = lambda name: idx(os.path.join(a.data, name))  # noqa: E731
    xtr = torch.from_numpy(load("train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255).to(dev)
    ytr = torch.from_numpy(load("train-labels-idx1-ubyte.gz").astype(np.int64)).to(dev)
    xte = torch.from_numpy(load("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255).to(dev)
    yte = torch.from_numpy(load("t10k-labels-idx1-ubyte.gz").astype(np.int64)).to(dev)
    for batch in [int(b) for b in a.batches.split(",")]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10)).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        secs, accs = [], []
        for _ in range(a.epochs):
            sync()
            t0 = time.perf_counter()
            perm = torch.randperm(xtr.shape[0], device=dev)
            for s in range(0, xtr.shape[0], batch):
                i = perm[s:s + batch]
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xtr[i]), ytr[i]).backward()
                opt.step()
            with torch.no_grad():
                acc = (model(xte).argmax(1) == yte).float().mean()
            sync()
            secs.append(time.perf_counter() - t0)
            accs.append(round(acc.item(), 4))
        steady = sorted(secs[1:])[len(secs[1:]) // 2]
        print(json.dumps({"peer": f"torch-{dev.type}-eager-b{batch}", "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
                          "torch": torch.__version__, "batch": batch, "epoch_s": [round(s, 4) for s in secs],
                          "median_s_ep2plus": steady, "test_acc": accs}), flush=True)


if __name__ == "__main__":
    main()
