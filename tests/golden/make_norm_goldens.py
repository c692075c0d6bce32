#!/usr/bin/env python3
"""make_norm_goldens.py -- golden numbers for layernorm (nn.LayerNorm,
F.layer_norm) (tests/unit/test_norm_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_norm_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata):
  y = ln1(x * p)                     nn.LayerNorm(12): the last axis, affine
  q = ln2(z)                         nn.LayerNorm((4, 4), eps=1e-3): the last two axes
  u = F.layer_norm(x * p + 3, (12,)) no affine, a shifted mean
with random weights and biases for ln1 and ln2 (not the ones and zeros they
start at), and a loss that is the sum of one mse per output against its own
target, so the gradients of p (through layernorm_bwd with and without a
weight) and of the affine parameters (layernorm_bwd_params) are checked.
References are computed in float64 from the float32-rounded inputs and
stored as float32.  Writes norm_goldens.safetensors:

  p, ln1.weight, ln1.bias, ln2.weight, ln2.bias   the parameters
  b<n>.x, b<n>.z             inference inputs at batch n = 1 and 4
  b<n>.y, b<n>.q, b<n>.u     the outputs there
  train.x, train.z, train.t_y, train.t_q, train.t_u   one training batch of 4
  train.loss [1]             its loss
  grad.<param>               the gradients (= SGD's momentum buffer after the step)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_goldens import type_text as f32, write_model_goldens  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {"y": [5, 12], "q": [3, 4, 4], "u": [5, 12]}
OUTPUTS = list(SHAPES)

SOURCE = (
    "model norm(x: f32[N, 5, 12], z: f32[N, 3, 4, 4]) -> ("
    + ", ".join(f"{o}: {f32(SHAPES[o])}" for o in OUTPUTS) + ") {\n"
    "  param p: f32[5, 12] = normal(std=1)\n"
    "  s = x * p\n"
    "  y = s |> ln1: layernorm\n"
    "  q = z |> ln2: layernorm(dims=2, eps=1e-3)\n"
    "  u = (s + 3.0) |> layernorm(elementwise_affine=false)\n"
    "}\n"
    "train norm {\n"
    + "".join(f"  t_{o}: {f32(SHAPES[o])}\n" for o in OUTPUTS)
    + "  loss = " + " + ".join(f"mse({o}, t_{o})" for o in OUTPUTS) + "\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9)\n"
    "}\n")


def forward(x, w):
    s = x["x"] * w["p"]
    return {
        "y": F.layer_norm(s, (12,), w["ln1.weight"], w["ln1.bias"]),
        "q": F.layer_norm(x["z"], (4, 4), w["ln2.weight"], w["ln2.bias"], eps=1e-3),
        "u": F.layer_norm(s + 3.0, (12,)),
    }


def inputs(n):
    return {"x": torch.randn(n, 5, 12) * 2, "z": torch.randn(n, 3, 4, 4) + 0.5}


def main():
    torch.manual_seed(11)
    w = {"p": torch.randn(5, 12), "ln1.weight": torch.randn(12), "ln1.bias": torch.randn(12),
         "ln2.weight": torch.randn(4, 4), "ln2.bias": torch.randn(4, 4)}
    meta = {"script": "tests/golden/make_norm_goldens.py", "source": SOURCE}
    write_model_goldens(os.path.join(HERE, "norm_goldens.safetensors"), meta, w, inputs, forward, SHAPES)


if __name__ == "__main__":
    main()
