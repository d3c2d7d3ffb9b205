#!/usr/bin/env python3
"""Writes the fuzzers' seed inputs to fuzz/seeds/{idx,model,checkpoint}: small valid files.

Standard library only, so the seeds can be remade without building anything. The main test
suite (tests/checkpoint.rs, `fuzz_seeds_are_valid`) loads every seed, so a seed that drifts from
the formats fails a test rather than silently weakening the fuzzers.
"""

import gzip
import json
import math
import os
import struct

SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def write(kind, name, data):
    os.makedirs(os.path.join(SEEDS, kind), exist_ok=True)
    with open(os.path.join(SEEDS, kind, name), "wb") as f:
        f.write(data)


def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


def safetensors(tensors, metadata):
    """tensors: [(name, shape, [float])], F32 little-endian, contiguous offsets in list order."""
    header, data = {"__metadata__": metadata}, b""
    for name, shape, values in tensors:
        assert math.prod(shape) == len(values), name
        start = len(data)
        data += struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [start, len(data)]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def layout(sizes):
    """(weight offset, bias offset) per layer and the total length, as src/model.rs lays them out."""
    align = lambda x: (x + 3) // 4 * 4
    at, slots = 0, []
    for i, o in zip(sizes, sizes[1:]):
        w = at
        at = align(at + i * o)
        slots.append((w, at))
        at = align(at + o)
    return slots, at


def flat(sizes, seed):
    slots, n = layout(sizes)
    params = [0.0] * n
    for (w, b), i, o in zip(slots, sizes, sizes[1:]):
        for k in range(i * o):
            params[w + k] = math.sin(seed + k) * 0.5
        for k in range(o):
            params[b + k] = 0.01 * (k + 1)
    return params


def network(sizes, activations):
    """The Network JSON: inputs, then one dense layer per following size."""
    return {"inputs": sizes[0],
            "layers": [{"dense": {"units": u, "activation": a}} for u, a in zip(sizes[1:], activations)]}


def model(sizes, activations):
    spec = network(sizes, activations)
    params = flat(sizes, 1)
    slots, _ = layout(sizes)
    tensors = []
    for l, ((w, b), i, o) in enumerate(zip(slots, sizes, sizes[1:])):
        tensors.append(("layers.%d.weight" % l, [i, o], params[w : w + i * o]))
        tensors.append(("layers.%d.bias" % l, [o], params[b : b + o]))
    meta = {"format": "wgtrain-mlp", "version": "1", "spec": json.dumps(spec)}
    return safetensors(tensors, meta)


def checkpoint(sizes, early_stopping, with_best):
    spec = network(sizes, ["relu"] * (len(sizes) - 2) + ["identity"])
    n = layout(sizes)[1]
    params = flat(sizes, 2)
    tensors = [
        ("best_params", [n if with_best else 0], flat(sizes, 3) if with_best else []),
        ("m", [n], [p * 1e-3 for p in params]),
        ("params", [n], params),
        ("v", [n], [abs(p) * 1e-6 for p in params]),
    ]
    record = {"epoch": 0,
              "metrics": {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": "NaN"},
              "seconds": 1.25, "samples_per_second": 800.0}
    meta = {
        "format": "wgtrain-checkpoint",
        "version": "1",
        "spec": json.dumps(spec),
        "optimizer": json.dumps({"Adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-7,
                                          "weight_decay": 0.0}}),
        "step": "3",
        "epoch": "1",
        "rng": json.dumps({"state": 0x2360ED051FC65DA44385DF649FCCF645}),
        "early_stopping": json.dumps(early_stopping),
        "history": json.dumps({"epochs": [record]}),
    }
    return safetensors(tensors, meta)


EARLY_STOPPING = {
    "monitor": "val_loss", "patience": 2, "min_delta": 0.001, "mode": "auto", "baseline": None,
    "restore_best_weights": True, "start_from_epoch": 0, "check_finite": True,
    "stopping_threshold": None, "divergence_threshold": "inf",
    "progress": {"wait": 0, "best": 0.6, "best_epoch": 0, "snapshot_epoch": 0,
                 "wants_snapshot": True, "stopped_epoch": None, "stop_reason": None,
                 "stop_value": None},
}

images = idx(0x803, [3, 4, 5], [(7 * k) % 256 for k in range(60)])
labels = idx(0x801, [3], [0, 1, 2])
write("idx", "images.idx", images)
write("idx", "labels.idx", labels)
write("idx", "images.idx.gz", gzip.compress(images, mtime=0))
write("idx", "labels.idx.gz", gzip.compress(labels, mtime=0))
write("model", "7-5-3.safetensors", model([7, 5, 3], ["tanh", "identity"]))
write("model", "3-4-2-1.safetensors", model([3, 4, 2, 1], ["relu", "gelu", "sigmoid"]))
write("model", "1-1.safetensors", model([1, 1], ["identity"]))
write("checkpoint", "3-4-2.safetensors", checkpoint([3, 4, 2], EARLY_STOPPING, True))
write("checkpoint", "2-3-no-es.safetensors", checkpoint([2, 3], None, False))
