#!/usr/bin/env python3
"""make_act_goldens.py -- golden numbers for the activations leaky_relu,
elu, gelu and for adaptive average and max pooling
(tests/unit/test_act_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_act_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata): two inputs times or plus raw parameters p and q, then
every op under test as its own output --
  a = F.leaky_relu(s, 0.1)            e = F.elu(s, alpha=1.5)
  g = F.gelu(s)                       h = F.gelu(s, approximate="tanh")
  u = F.adaptive_avg_pool2d(r, 3)     (5x5 -> 3x3: uneven, overlapping windows)
  v = F.adaptive_avg_pool2d(s, (3, 2))  (7x5 -> 3x2)
  m = F.adaptive_max_pool2d(r, 3)     k = F.adaptive_max_pool2d(s, (3, 2))
  w = F.adaptive_max_pool2d(0 x + c, (3, 2))  (c starts at zeros: every window a tie,
                                       and 7 -> 3 and 5 -> 2 windows overlap)
  o = F.leaky_relu(0 x + c, 0.1) + F.elu(0 x + c, alpha=1.5)  (the gradients at 0)
with s = x * p, r = z + q -- and a loss that is the sum of one mse per
output against its own target, so the gradients of p and q go back through
every backward op; the gradient of c shows PyTorch's tie rule (the first
maximal cell of a window, row-major, gets its gradient) and the slopes of
leaky_relu and elu at exactly 0 (negative_slope and alpha: x > 0 is false).  References are computed in float64 from the
float32-rounded inputs and stored as float32.  Writes act_goldens.safetensors:

  p, q, c                    the initial parameters
  b<n>.x, b<n>.z             inference inputs at batch n = 1 and 4
  b<n>.<output>              the 10 outputs there
  train.<input>              one training batch of 4 (x, z, and the 10 targets t_<output>)
  train.loss [1]             its loss
  grad.p, grad.q, grad.c     the gradients (= SGD's momentum buffer after the step)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

OUTPUTS = ["a", "e", "g", "h", "u", "v", "m", "k", "w", "o"]
SHAPES = {"a": [2, 7, 5], "e": [2, 7, 5], "g": [2, 7, 5], "h": [2, 7, 5],
          "u": [3, 3, 3], "v": [2, 3, 2], "m": [3, 3, 3], "k": [2, 3, 2], "w": [2, 3, 2], "o": [2, 7, 5]}


def f32(dims):
    return "f32[N, " + ", ".join(str(d) for d in dims) + "]"


SOURCE = (
    "model act(x: f32[N, 2, 7, 5], z: f32[N, 3, 5, 5]) -> ("
    + ", ".join(f"{o}: {f32(SHAPES[o])}" for o in OUTPUTS) + ") {\n"
    "  param p: f32[2, 7, 5] = normal(std=1)\n"
    "  param q: f32[3, 5, 5] = normal(std=1)\n"
    "  param c: f32[2, 7, 5] = zeros\n"
    "  s = x * p\n"
    "  r = z + q\n"
    "  a = leaky_relu(s, negative_slope=0.1)\n"
    "  e = elu(s, alpha=1.5)\n"
    "  g = gelu(s)\n"
    "  h = gelu(s, approximate=\"tanh\")\n"
    "  u = adaptive_avgpool(r, 3)\n"
    "  v = adaptive_avgpool(s, [3, 2])\n"
    "  m = adaptive_maxpool(r, 3)\n"
    "  k = adaptive_maxpool(s, [3, 2])\n"
    "  w = adaptive_maxpool(x * 0.0 + c, [3, 2])\n"
    "  o = leaky_relu(x * 0.0 + c, negative_slope=0.1) + elu(x * 0.0 + c, alpha=1.5)\n"
    "}\n"
    "train act {\n"
    + "".join(f"  t_{o}: {f32(SHAPES[o])}\n" for o in OUTPUTS)
    + "  loss = " + " + ".join(f"mse({o}, t_{o})" for o in OUTPUTS) + "\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9)\n"
    "}\n")


def forward(x, z, p, q, c):
    s, r = x * p, z + q
    return {
        "a": F.leaky_relu(s, 0.1),
        "e": F.elu(s, alpha=1.5),
        "g": F.gelu(s),
        "h": F.gelu(s, approximate="tanh"),
        "u": F.adaptive_avg_pool2d(r, 3),
        "v": F.adaptive_avg_pool2d(s, (3, 2)),
        "m": F.adaptive_max_pool2d(r, 3),
        "k": F.adaptive_max_pool2d(s, (3, 2)),
        "w": F.adaptive_max_pool2d(x * 0.0 + c, (3, 2)),
        "o": F.leaky_relu(x * 0.0 + c, 0.1) + F.elu(x * 0.0 + c, alpha=1.5),
    }


def main():
    torch.manual_seed(5)
    p = torch.randn(2, 7, 5)
    q = torch.randn(3, 5, 5)
    c = torch.zeros(2, 7, 5)
    out = {"p": p, "q": q, "c": c}
    for n in (1, 4):
        x, z = torch.randn(n, 2, 7, 5) * 2, torch.randn(n, 3, 5, 5)
        out[f"b{n}.x"], out[f"b{n}.z"] = x, z
        ys = forward(x.double(), z.double(), p.double(), q.double(), c.double())
        ys32 = forward(x, z, p, q, c)
        for o in OUTPUTS:
            out[f"b{n}.{o}"] = ys[o].float()
            err = ((ys32[o].double() - ys[o]).abs().max() / ys[o].abs().max().clamp_min(1e-30)).item()
            print(f"batch {n} {o}: fp32 vs fp64 {err:.2e}")
    n = 4
    x, z = torch.randn(n, 2, 7, 5) * 2, torch.randn(n, 3, 5, 5)
    out["train.x"], out["train.z"] = x, z
    targets = {o: torch.randn(n, *SHAPES[o]) for o in OUTPUTS}
    for o in OUTPUTS:
        out[f"train.t_{o}"] = targets[o]
    pd = p.double().requires_grad_(True)
    qd = q.double().requires_grad_(True)
    cd = c.double().requires_grad_(True)
    ys = forward(x.double(), z.double(), pd, qd, cd)
    loss = sum(F.mse_loss(ys[o], targets[o].double()) for o in OUTPUTS)
    loss.backward()
    out["train.loss"] = loss.detach().float().reshape(1)
    out["grad.p"] = pd.grad.float()
    out["grad.q"] = qd.grad.float()
    out["grad.c"] = cd.grad.float()
    print(f"loss {loss.item():.6f}")
    meta = {"script": "tests/golden/make_act_goldens.py", "source": SOURCE, "outputs": ",".join(OUTPUTS)}
    write_safetensors(os.path.join(HERE, "act_goldens.safetensors"), out, meta)


if __name__ == "__main__":
    main()
