#!/usr/bin/env python3
"""torch_vit.py -- the PyTorch side of bench/train_fmnist.sh -m vit: the
small ViT of examples/vit_fmnist.dnn in torchvision's VisionTransformer
(image 28, patch 7, 4 layers, 4 heads, hidden 64, MLP 128, 10 classes; its
conv_proj made single-channel) with the same recipe: AdamW 2e-3, weight
decay 0.05, lr(t) = 2e-3 * min(1, (t + 1) / 200) * (1 + cos(pi * min(t, 4690) / 4690)) / 2,
batch 64, cross-entropy.

  torch_vit.py train --threads T --epochs E [--batch 64] [--data DIR] [--limit K]
      prints per epoch "epoch E train time S s (I img/s), test accuracy A%"
Set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to T as well (the shell scripts do).
"""
import argparse
import math
import sys

import torch
from torch import nn
from torchvision.models import VisionTransformer

from torch_lenet import train_loop

LR, WARMUP, TOTAL = 2e-3, 200, 4690


def model():
    m = VisionTransformer(image_size=28, patch_size=7, num_layers=4, num_heads=4, hidden_dim=64, mlp_dim=128,
                          num_classes=10)
    m.conv_proj = nn.Conv2d(1, 64, kernel_size=7, stride=7)
    return m


def rate(t):
    warm = (t + 1) / WARMUP if t < WARMUP else 1.0
    return warm * (1 + math.cos(math.pi * min(t, TOTAL) / TOTAL)) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["train"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    m = model()
    opt = torch.optim.AdamW(m.parameters(), lr=LR, weight_decay=0.05)
    train_loop(args, m, opt, torch.optim.lr_scheduler.LambdaLR(opt, rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
