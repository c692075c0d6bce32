#!/usr/bin/env python3
"""torch_resnet.py -- the PyTorch side of bench/infer_resnet.sh: ResNet-18
exactly as examples/resnet.dnn (torchvision's resnet18 as written out by hand
in tests/golden/make_goldens.py; torchvision is not needed).

  torch_resnet.py infer --threads T --batch B [--reps R] [--warmup W]
      eval mode, no_grad, random weights and inputs (3x224x224); prints
      "infer batch B median M ms"
Set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to T as well (the shell script does).
"""
import argparse
import os
import sys

import torch


# The model: the twin of examples/resnet.dnn that the golden tests use.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from make_goldens import resnet18  # noqa: E402
from torch_timing import time_infer  # noqa: E402


def infer(args):
    torch.manual_seed(args.seed)
    time_infer(resnet18(), torch.randn(args.batch, 3, 224, 224), args.reps, args.warmup)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["infer"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    infer(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
