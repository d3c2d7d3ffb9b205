"""PyTorch CPU on the wide model of BENCHMARKS.md: a 784-H1-...-10 ReLU MLP on full MNIST
(pixels / 255), Adam(1e-3, (0.9, 0.999), eps 1e-8), CrossEntropyLoss on logits, shuffled
mini-batches from preloaded tensors (randperm + index_select), validation on the 10,000 test
images after each epoch, as `cargo run --release --example bench -- --only train --hidden
1024,1024` does for wgtrain. Adapted from ../shared/peers/torch_mlp.py (its `tensor` loader),
with the hidden widths as a flag and the IDX files read here.

Usage: python benches/torch_wide_mlp.py --mnist data/mnist --hidden 1024,1024 --batch 128 --epochs 3
Prints one JSON line: seconds per epoch (training, and training + validation) per epoch,
their medians over epochs 2.., and the test accuracy after each epoch.
"""
import argparse
import gzip
import json
import os
import statistics
import struct
import time

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(folder):
    def pair(images, labels):
        x = idx(os.path.join(folder, images)).reshape(-1, 784).astype(np.float32) / 255.0
        y = idx(os.path.join(folder, labels)).astype(np.int64)
        return torch.from_numpy(x), torch.from_numpy(y)

    return (pair("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            pair("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", default="data/mnist")
    ap.add_argument("--hidden", default="1024,1024")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-rows", type=int, default=None, help="the first N training images only")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (xtr, ytr), (xte, yte) = load(a.mnist)
    if a.train_rows:
        xtr, ytr = xtr[:a.train_rows], ytr[:a.train_rows]
    widths = [784] + [int(h) for h in a.hidden.split(",")] + [10]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    train_s, total_s, accs = [], [], []
    for _ in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(xtr.shape[0])
        for s in range(0, xtr.shape[0], a.batch):
            i = perm[s:s + a.batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xtr.index_select(0, i)), ytr.index_select(0, i)).backward()
            opt.step()
        t1 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            accs.append((model(xte).argmax(1) == yte).float().mean().item())
        t2 = time.perf_counter()
        train_s.append(t1 - t0)
        total_s.append(t2 - t0)
    steady = slice(1, None) if a.epochs > 1 else slice(0, None)
    print(json.dumps({
        "peer": "pytorch-cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "hidden": widths[1:-1], "train_rows": int(xtr.shape[0]), "batch": a.batch, "train_seconds": train_s, "epoch_seconds": total_s,
        "median_train_seconds": statistics.median(train_s[steady]),
        "median_epoch_seconds": statistics.median(total_s[steady]), "test_accuracy": accs,
    }))


if __name__ == "__main__":
    main()
