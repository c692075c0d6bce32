#!/usr/bin/env python3
"""torch_lenet.py -- the PyTorch side of bench/train_fmnist.sh -m lenet and
bench/infer_lenet.sh: LeNet-5 exactly as bench/lenet_adam.dnn.

  torch_lenet.py train --threads T --epochs E [--batch 64] [--data DIR] [--limit K]
      trains with Adam 1e-3 on Fashion-MNIST standardised like dnnrun
      ((x/255 - 0.2860)/0.3530), shuffled each epoch; prints per epoch
      "epoch E train time S s (I img/s), test accuracy A%"
  torch_lenet.py infer --threads T --batch B [--reps R]
      eval mode, no_grad, random weights and inputs; prints
      "infer batch B median M ms"
Set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to T as well (the shell scripts do).
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


# The model: the twin of bench/lenet_adam.dnn that the golden tests use.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from make_goldens import LeNet  # noqa: E402
from torch_timing import time_infer  # noqa: E402


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(d, split, limit):
    def path(kind):
        p = os.path.join(d, f"{split}-{kind}-ubyte.gz")
        return p if os.path.exists(p) else p[:-3]
    x = read_idx(path("images-idx3"))[:limit]
    y = read_idx(path("labels-idx1"))[:limit]
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - 0.2860) / 0.3530
    return x.unsqueeze(1).contiguous(), torch.from_numpy(y.astype(np.int64))


def train_loop(args, model, opt, sched=None):
    """Trains 'model' on Fashion-MNIST (args.data, args.limit) for args.epochs
    with 'opt' (and 'sched' stepped after every step), printing the epoch
    lines of the module docstring.  The caller seeds torch first."""
    xtr, ytr = load_split(args.data, "train", args.limit)
    xte, yte = load_split(args.data, "t10k", args.limit)
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr))
        t0 = time.perf_counter()
        for i in range(0, len(xtr), args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                          for i in range(0, len(xte), 1000))
        print(f"epoch {epoch} train time {secs:.2f} s ({len(xtr) / secs:.0f} img/s), "
              f"test accuracy {100.0 * correct / len(xte):.2f}%", flush=True)


def train(args):
    torch.manual_seed(args.seed)
    model = LeNet()
    train_loop(args, model, torch.optim.Adam(model.parameters(), lr=1e-3))


def infer(args):
    torch.manual_seed(args.seed)
    time_infer(LeNet(), torch.randn(args.batch, 1, 28, 28), args.reps, args.warmup)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["train", "infer"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train(args) if args.mode == "train" else infer(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
