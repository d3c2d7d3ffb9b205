"""The same job as wgtrain's bench, in PyTorch on a CUDA GPU: a 784-H...-10 ReLU MLP (the demo's
784-64-10 by default, `--hidden 1024,1024` for the wide model), Adam 1e-3, MNIST (the bundled
data/mnist; `--train-rows N` for its first N images), the training set preloaded on the GPU, a
randperm per epoch, and a validation pass over the 10,000 test images each epoch (as wgtrain's
epoch includes one). Three ways to run the step, each timed apart (`--modes`):

- eager: plain PyTorch, one launch per operation.
- graphs: the whole training step (batch gather, forward, loss, backward, Adam with
  `capturable=True`) captured once in a CUDA graph and replayed per batch, PyTorch's
  "whole-network capture"; the last, shorter batch of an epoch runs eagerly.
- compile: `torch.compile(mode="reduce-overhead")` on the model and the step (Inductor's kernels
  replayed through CUDA graphs); compiling is in the first epoch, which the median leaves out.

Prints one JSON line per mode and batch size: seconds per epoch, their median over epochs 2..N,
the test accuracy after each epoch and the GFLOP/s of that median (6 multiply-add FLOPs per weight
per training image and 2 per weight per validation image, BENCHMARKS.md's count). A mode that
fails prints a line with its error and the others still run; on SIGTERM (a time limit) the mode
in progress prints the epochs it finished and the script exits.

    python3 benches/torch_gpu_mlp.py [--modes eager,graphs,compile] [--epochs 5] [--batches 128,32]
        [--hidden 64] [--train-rows N] [--data data/mnist] [--device cpu (eager only, to check)]
"""
import argparse
import gzip
import json
import os
import signal
import struct
import time
import traceback

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mlp(hidden):
    layers, prev = [], 784
    for w in hidden:
        layers += [nn.Linear(prev, w), nn.ReLU()]
        prev = w
    return nn.Sequential(*layers, nn.Linear(prev, 10))


def weights(hidden):
    widths = [784] + hidden + [10]
    return sum(a * b for a, b in zip(widths, widths[1:]))


class Eager:
    """One launch per operation, as most PyTorch training loops run."""

    def __init__(self, model, opt, loss_fn, xtr, ytr, batch):
        self.model, self.opt, self.loss_fn, self.xtr, self.ytr = model, opt, loss_fn, xtr, ytr

    def step(self, i):
        self.opt.zero_grad(set_to_none=True)
        self.loss_fn(self.model(self.xtr[i]), self.ytr[i]).backward()
        self.opt.step()

    def evaluate(self, xte):
        return self.model(xte)


class Graphs(Eager):
    """The full-batch step captured once in a CUDA graph (PyTorch's whole-network capture
    recipe): the batch's rows are gathered into static tensors inside the graph, so a replay
    needs only the batch's indices copied in. The capture is made after three warm-up steps on
    a side stream, and the weights and Adam's state are put back to their values before those
    steps, so the run trains exactly as many steps as eager does."""

    def __init__(self, model, opt, loss_fn, xtr, ytr, batch):
        super().__init__(model, opt, loss_fn, xtr, ytr, batch)
        self.batch = batch
        self.index = torch.zeros(batch, dtype=torch.int64, device=xtr.device)
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step_body()
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            for k, v in model.state_dict().items():
                v.copy_(saved[k])
            for state in opt.state.values():
                for t in state.values():
                    if torch.is_tensor(t):
                        t.zero_()
        self.graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self._step_body()

    def _step_body(self):
        loss = self.loss_fn(self.model(self.xtr.index_select(0, self.index)), self.ytr.index_select(0, self.index))
        loss.backward()
        self.opt.step()

    def step(self, i):
        if i.shape[0] == self.batch:
            self.index.copy_(i)
            self.graph.replay()
        else:
            # Only the graph's own gradient tensors are written by its replays: an eager step
            # needs its own, and leaves the graph's alone.
            self.opt.zero_grad(set_to_none=True)
            self.loss_fn(self.model(self.xtr[i]), self.ytr[i]).backward()
            self.opt.step()


class Compiled(Eager):
    """`torch.compile(mode="reduce-overhead")`: Inductor's fused kernels, replayed through CUDA
    graphs (a second graph for the epoch's shorter last batch)."""

    def __init__(self, model, opt, loss_fn, xtr, ytr, batch):
        super().__init__(model, opt, loss_fn, xtr, ytr, batch)
        compiled = torch.compile(model, mode="reduce-overhead")

        @torch.compile(mode="reduce-overhead")
        def opt_step():
            opt.step()

        def step(i):
            # One cudagraph-tree generation per training step: without the mark, calling the
            # second compiled function (the optimizer) would free the outputs of the first's
            # path, the gradients included.
            torch.compiler.cudagraph_mark_step_begin()
            opt.zero_grad(set_to_none=True)
            loss_fn(compiled(xtr[i]), ytr[i]).backward()
            opt_step()

        self.step, self.compiled = step, compiled

    def evaluate(self, xte):
        torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(xte).clone()


MODES = {"eager": Eager, "graphs": Graphs, "compile": Compiled}


class Stopped(Exception):
    """SIGTERM (gpu_call.sh's per-step `timeout`): the mode in progress reports what it has."""


def stop(signum, frame):
    raise Stopped("stopped by SIGTERM (the step's time limit) during this mode")


def run(mode, batch, a, dev, xtr, ytr, xte, yte, record):
    # Filled epoch by epoch, so that a stopped run still reports the epochs it finished.
    secs, accs = record.setdefault("epoch_s", []), record.setdefault("test_acc", [])
    torch.manual_seed(0)
    model = mlp(a.hidden).to(dev)
    capturable = mode != "eager" and dev.type == "cuda"
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=capturable)
    runner = MODES[mode](model, opt, nn.CrossEntropyLoss(), xtr, ytr, batch)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(a.epochs):
        sync()
        t0 = time.perf_counter()
        perm = torch.randperm(xtr.shape[0], device=dev)
        for s in range(0, xtr.shape[0], batch):
            runner.step(perm[s:s + batch])
        with torch.no_grad():
            acc = (runner.evaluate(xte).argmax(1) == yte).float().mean()
        sync()
        secs.append(round(time.perf_counter() - t0, 4))
        accs.append(round(acc.item(), 4))
    steady = sorted(secs[1:])[len(secs[1:]) // 2] if len(secs) > 1 else secs[0]
    gflop = 2 * weights(a.hidden) * (3 * xtr.shape[0] + xte.shape[0]) / 1e9
    record.update({"median_s_ep2plus": steady, "gflop_per_epoch": round(gflop, 3), "gflops": round(gflop / steady, 1)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="eager,graphs,compile")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batches", default="128,32")
    ap.add_argument("--hidden", default="64")
    ap.add_argument("--train-rows", type=int, default=None)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    ap.add_argument("--device", default="cuda", help="cuda, or cpu to check the eager path")
    a = ap.parse_args()
    a.hidden = [int(w) for w in a.hidden.split(",")]
    dev = torch.device(a.device)
    load = lambda name: idx(os.path.join(a.data, name))  # noqa: E731
    xtr = torch.from_numpy(load("train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    ytr = torch.from_numpy(load("train-labels-idx1-ubyte.gz").astype(np.int64))
    if a.train_rows:
        xtr, ytr = xtr[:a.train_rows], ytr[:a.train_rows]
    xtr, ytr = xtr.to(dev), ytr.to(dev)
    xte = torch.from_numpy(load("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255).to(dev)
    yte = torch.from_numpy(load("t10k-labels-idx1-ubyte.gz").astype(np.int64)).to(dev)
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    signal.signal(signal.SIGTERM, stop)
    for mode in a.modes.split(","):
        for batch in [int(b) for b in a.batches.split(",")]:
            record = {"peer": f"torch-{dev.type}-{mode}-b{batch}", "mode": mode, "device": name,
                      "torch": torch.__version__, "batch": batch, "hidden": a.hidden, "train_rows": xtr.shape[0]}
            stopped = False
            try:
                run(mode, batch, a, dev, xtr, ytr, xte, yte, record)
            except Exception as e:  # one mode's failure must not lose the others' figures
                record["error"] = f"{type(e).__name__}: {e}"
                record["trace"] = traceback.format_exc()[-2000:]
                stopped = isinstance(e, Stopped)
            print(json.dumps(record), flush=True)
            if stopped:
                return


if __name__ == "__main__":
    main()
