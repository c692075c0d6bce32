#!/usr/bin/env python3
"""make_interp_goldens.py -- golden numbers for interpolate (F.interpolate,
align_corners=False, bilinear and nearest; tests/unit/test_interp_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_interp_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata): s = x * p (p a raw parameter), then
  a = bilinear 5x7 -> 8x11     (up, uneven ratios)
  b = bilinear 5x7 -> 3x4      (down)
  c = nearest  5x7 -> 10x14    (exactly 2x)
  d = nearest  5x7 -> 3x5      (down)
  e = bilinear 5x7 -> 5x7      (same size: the identity)
  f = bilinear 5x7 -> 12x3     (up in height, down in width)
  g = nearest  5x7 -> 9x4      (up in height, down in width)
and a loss that is the sum of one mse per output against its own target, so
the gradient of p goes back through every backward.  References are
PyTorch's own float32 run (the op's contract is PyTorch's f32 index and
weight arithmetic: a float64 run could pick other nearest cells at exact
integer boundaries); the script prints how far a float64 run is.  Writes
interp_goldens.safetensors:

  p                          the initial parameter
  b<n>.x                     inference input at batch n = 1 and 3
  b<n>.<output>              the 7 outputs there
  train.x, train.t_<output>  one training batch of 3 and its targets
  train.loss [1]             its loss
  grad.p                     the gradient (= SGD's momentum buffer after the step)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = {  # output: (size, mode)
    "a": ([8, 11], "bilinear"),
    "b": ([3, 4], "bilinear"),
    "c": ([10, 14], "nearest"),
    "d": ([3, 5], "nearest"),
    "e": ([5, 7], "bilinear"),
    "f": ([12, 3], "bilinear"),
    "g": ([9, 4], "nearest"),
}
OUTPUTS = list(CASES)


def f32(size):
    return f"f32[N, 2, {size[0]}, {size[1]}]"


SOURCE = (
    "model interp(x: f32[N, 2, 5, 7]) -> ("
    + ", ".join(f"{o}: {f32(CASES[o][0])}" for o in OUTPUTS) + ") {\n"
    "  param p: f32[2, 5, 7] = normal(std=1)\n"
    "  s = x * p\n"
    + "".join(f"  {o} = interpolate(s, [{sz[0]}, {sz[1]}], mode=\"{m}\")\n" for o, (sz, m) in CASES.items())
    + "}\n"
    "train interp {\n"
    + "".join(f"  t_{o}: {f32(CASES[o][0])}\n" for o in OUTPUTS)
    + "  loss = " + " + ".join(f"mse({o}, t_{o})" for o in OUTPUTS) + "\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9)\n"
    "}\n")


def forward(x, p):
    s = x * p
    return {o: F.interpolate(s, size=sz, mode=m, align_corners=None if m == "nearest" else False)
            for o, (sz, m) in CASES.items()}


def main():
    torch.manual_seed(7)
    p = torch.randn(2, 5, 7)
    out = {"p": p}
    for n in (1, 3):
        x = torch.randn(n, 2, 5, 7)
        out[f"b{n}.x"] = x
        ys = forward(x, p)
        yd = forward(x.double(), p.double())
        for o in OUTPUTS:
            out[f"b{n}.{o}"] = ys[o]
            err = ((ys[o].double() - yd[o]).abs().max() / yd[o].abs().max()).item()
            print(f"batch {n} {o}: fp32 vs fp64 {err:.2e}")
    n = 3
    x = torch.randn(n, 2, 5, 7)
    out["train.x"] = x
    targets = {o: torch.randn(n, 2, *CASES[o][0]) for o in OUTPUTS}
    for o in OUTPUTS:
        out[f"train.t_{o}"] = targets[o]
    pg = p.clone().requires_grad_(True)
    ys = forward(x, pg)
    loss = sum(F.mse_loss(ys[o], targets[o]) for o in OUTPUTS)
    loss.backward()
    out["train.loss"] = loss.detach().reshape(1)
    out["grad.p"] = pg.grad.clone()
    print(f"loss {loss.item():.6f}")
    meta = {"script": "tests/golden/make_interp_goldens.py", "source": SOURCE, "outputs": ",".join(OUTPUTS)}
    write_safetensors(os.path.join(HERE, "interp_goldens.safetensors"), out, meta)


if __name__ == "__main__":
    main()
