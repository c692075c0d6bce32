#!/usr/bin/env python3
"""make_permute_goldens.py -- golden numbers for permute and expand
(torch.permute, torch.Tensor.expand) (tests/unit/test_permute_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_permute_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata):
  y = torch.cat([cls.expand(n, -1, -1), fa(x).reshape(n, 12, 6)], dim=1)
                                    a class token to the batch, as in ViT
  z = (x * p).permute(0, 3, 2, 1) * q.expand(6, 3, 4)
                                    a 4-d permute, a [3, 1] parameter to a new
                                    leading axis and a wider last one
with a loss that is the sum of one mse per output against its own target,
so the gradients of cls, q (the sums over the expanded axes), p (through
the permute) and fa are checked.  References are computed in float64 from
the float32-rounded inputs and stored as float32.  Writes
permute_goldens.safetensors:

  cls, p, q, fa.weight, fa.bias   the parameters
  b<n>.x                     inference inputs at batch n = 1 and 4
  b<n>.y, b<n>.z             the outputs there
  train.x, train.t_y, train.t_z   one training batch of 4
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
SHAPES = {"y": [13, 6], "z": [6, 3, 4]}
OUTPUTS = list(SHAPES)

SOURCE = (
    "model perm(x: f32[N, 4, 3, 6]) -> ("
    + ", ".join(f"{o}: {f32(SHAPES[o])}" for o in OUTPUTS) + ") {\n"
    "  param cls: f32[1, 1, 6] = normal(std=1)\n"
    "  param p: f32[4, 3, 6] = normal(std=1)\n"
    "  param q: f32[3, 1] = normal(std=1)\n"
    "  patches = x |> fa: dense(6) |> reshape(-1, 12, 6)\n"
    "  y = concat([cls |> expand(-1, -1, 6), patches], axis=1)\n"
    "  z = permute(x * p, 0, 3, 2, 1) * (q |> expand(6, 3, 4))\n"
    "}\n"
    "train perm {\n"
    + "".join(f"  t_{o}: {f32(SHAPES[o])}\n" for o in OUTPUTS)
    + "  loss = " + " + ".join(f"mse({o}, t_{o})" for o in OUTPUTS) + "\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9)\n"
    "}\n")


def forward(x, w):
    x = x["x"]
    n = x.shape[0]
    patches = F.linear(x, w["fa.weight"], w["fa.bias"]).reshape(n, 12, 6)
    return {
        "y": torch.cat([w["cls"].expand(n, -1, -1), patches], dim=1),
        "z": (x * w["p"]).permute(0, 3, 2, 1) * w["q"].expand(6, 3, 4),
    }


def main():
    torch.manual_seed(13)
    w = {"cls": torch.randn(1, 1, 6), "p": torch.randn(4, 3, 6), "q": torch.randn(3, 1),
         "fa.weight": torch.randn(6, 6) * 0.4, "fa.bias": torch.randn(6) * 0.4}
    meta = {"script": "tests/golden/make_permute_goldens.py", "source": SOURCE}
    write_model_goldens(os.path.join(HERE, "permute_goldens.safetensors"), meta, w,
                        lambda n: {"x": torch.randn(n, 4, 3, 6)}, forward, SHAPES)


if __name__ == "__main__":
    main()
