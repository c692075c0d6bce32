#!/usr/bin/env python3
"""make_shape_goldens.py -- golden numbers for the shape family: concat,
slicing (steps, negative indices and bounds, an int index), split, chunk
and stack (tests/unit/test_shape_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_shape_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic (seed 5).

MODEL (the dnnc text, stored in the metadata: the C test compiles it) is
mirrored by forward() with torch.cat, Python slicing, torch.split,
torch.chunk and torch.stack.  Computed in float64 from the float32 weights
and inputs, stored as float32.  Writes shape_goldens.safetensors:

  fa.weight, fa.bias, fb.weight, fb.bias     initial weights (Linear(5, 4) each)
  x.b2, y.b2, z.b2, x.b5, y.b5, z.b5        inference at batch 2 and 5
  ty, tz                                     targets of one training step on x.b5
  loss, grad.<param>                         that step's loss and gradients
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

MODEL = """model shape(x: f32[N, 6, 5]) -> (y: f32[N, 4, 3], z: f32[N, 2, 2]) {
  h = x |> fa: dense(4)
  g = x |> fb: dense(4)
  c = concat([h, g[:, 1:], h[:, -1:]], axis=1)
  s = c[:, 1:11:3, :]
  t = c[:, -2, ::2]
  parts = split(s, sizes=[1, 3], axis=2)
  q = chunk(parts[1], 3, axis=2)
  y = concat([parts[0] * q[2], q[0], parts[0] + q[1]], axis=2)
  z = stack([t, t * 2], axis=1)
}

train shape {
  ty: f32[N, 4, 3]
  tz: f32[N, 2, 2]
  loss = mse(y, ty) + mse(z, tz)
  optimizer = sgd(lr=0.1, momentum=0.9)
}
"""


def forward(x, w):
    h = F.linear(x, w["fa.weight"], w["fa.bias"])
    g = F.linear(x, w["fb.weight"], w["fb.bias"])
    c = torch.cat([h, g[:, 1:], h[:, -1:]], dim=1)
    s = c[:, 1:11:3, :]
    t = c[:, -2, ::2]
    parts = torch.split(s, [1, 3], dim=2)
    q = torch.chunk(parts[1], 3, dim=2)
    y = torch.cat([parts[0] * q[2], q[0], parts[0] + q[1]], dim=2)
    z = torch.stack([t, t * 2], dim=1)
    return y, z


def main():
    torch.manual_seed(5)
    fa, fb = torch.nn.Linear(5, 4), torch.nn.Linear(5, 4)
    w32 = {"fa.weight": fa.weight, "fa.bias": fa.bias, "fb.weight": fb.weight, "fb.bias": fb.bias}
    w32 = {k: v.detach().clone() for k, v in w32.items()}
    out = dict(w32)
    w = {k: v.double().requires_grad_(True) for k, v in w32.items()}
    for n in (2, 5):
        x = torch.randn(n, 6, 5)
        y, z = forward(x.double(), w)
        out[f"x.b{n}"], out[f"y.b{n}"], out[f"z.b{n}"] = x, y.detach().float(), z.detach().float()
    ty, tz = torch.randn(5, 4, 3), torch.randn(5, 2, 2)
    y, z = forward(out["x.b5"].double(), w)
    loss = F.mse_loss(y, ty.double()) + F.mse_loss(z, tz.double())
    loss.backward()
    out["ty"], out["tz"], out["loss"] = ty, tz, loss.detach().float().reshape(1)
    for k, v in w.items():
        out["grad." + k] = v.grad.float()
    print(f"loss {loss.item():.6f}")
    meta = {"script": "tests/golden/make_shape_goldens.py", "model": MODEL}
    write_safetensors(os.path.join(HERE, "shape_goldens.safetensors"), out, meta)


if __name__ == "__main__":
    main()
