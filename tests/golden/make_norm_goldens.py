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
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUTS = ["y", "q", "u"]
SHAPES = {"y": [5, 12], "q": [3, 4, 4], "u": [5, 12]}
PARAMS = ["p", "ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"]


def f32(dims):
    return "f32[N, " + ", ".join(str(d) for d in dims) + "]"


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


def forward(x, z, w):
    s = x * w["p"]
    return {
        "y": F.layer_norm(s, (12,), w["ln1.weight"], w["ln1.bias"]),
        "q": F.layer_norm(z, (4, 4), w["ln2.weight"], w["ln2.bias"], eps=1e-3),
        "u": F.layer_norm(s + 3.0, (12,)),
    }


def main():
    torch.manual_seed(11)
    w = {"p": torch.randn(5, 12), "ln1.weight": torch.randn(12), "ln1.bias": torch.randn(12),
         "ln2.weight": torch.randn(4, 4), "ln2.bias": torch.randn(4, 4)}
    out = dict(w)
    for n in (1, 4):
        x, z = torch.randn(n, 5, 12) * 2, torch.randn(n, 3, 4, 4) + 0.5
        out[f"b{n}.x"], out[f"b{n}.z"] = x, z
        ys = forward(x.double(), z.double(), {k: v.double() for k, v in w.items()})
        ys32 = forward(x, z, w)
        for o in OUTPUTS:
            out[f"b{n}.{o}"] = ys[o].float()
            err = ((ys32[o].double() - ys[o]).abs().max() / ys[o].abs().max().clamp_min(1e-30)).item()
            print(f"batch {n} {o}: fp32 vs fp64 {err:.2e}")
    n = 4
    x, z = torch.randn(n, 5, 12) * 2, torch.randn(n, 3, 4, 4) + 0.5
    out["train.x"], out["train.z"] = x, z
    targets = {o: torch.randn(n, *SHAPES[o]) for o in OUTPUTS}
    for o in OUTPUTS:
        out[f"train.t_{o}"] = targets[o]
    wd = {k: v.double().requires_grad_(True) for k, v in w.items()}
    ys = forward(x.double(), z.double(), wd)
    loss = sum(F.mse_loss(ys[o], targets[o].double()) for o in OUTPUTS)
    loss.backward()
    out["train.loss"] = loss.detach().float().reshape(1)
    for k in PARAMS:
        out[f"grad.{k}"] = wd[k].grad.float()
    print(f"loss {loss.item():.6f}")
    meta = {"script": "tests/golden/make_norm_goldens.py", "source": SOURCE, "outputs": ",".join(OUTPUTS)}
    write_safetensors(os.path.join(HERE, "norm_goldens.safetensors"), out, meta)


if __name__ == "__main__":
    main()
