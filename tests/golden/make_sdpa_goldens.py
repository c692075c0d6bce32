#!/usr/bin/env python3
"""make_sdpa_goldens.py -- golden numbers for scaled_dot_product_attention
(the arithmetic of PyTorch 2's F.scaled_dot_product_attention, written out
here because Debian's torch 1.13 has no such function)
(tests/unit/test_sdpa_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_sdpa_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata), over two heads:
  q = q0 * a, k = k0 + b, v = v0 * c          (raw parameters carry the gradient)
  y = softmax(q kᵀ / sqrt(4) + where(m, 0, -inf)) v      a key mask [N, 1, 1, 6]
  z = softmax(q k5ᵀ * 0.7 + causal) v5        is_causal over the first 5 keys
      (k5, v5 = k, v [:, :, 0:5]; causal: key j > query i gets -inf)
with a loss that is the sum of one mse per output against its own target.
dnnc adds -1e9 where PyTorch has -inf; both weights are exactly 0 in f32.
References are computed in float64 from the float32-rounded inputs and
stored as float32.  Writes sdpa_goldens.safetensors:

  a, b, c                    the parameters
  b<n>.q0, .k0, .v0, .m      inference inputs at batch n = 1 and 4
  b<n>.y, b<n>.z             the outputs there
  train.<input>, train.t_y, train.t_z   one training batch of 4
  train.loss [1]             its loss
  grad.<param>               the gradients (= SGD's momentum buffer after the step)
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_goldens import type_text as f32, write_model_goldens  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {"y": [2, 5, 3], "z": [2, 5, 3]}
OUTPUTS = list(SHAPES)
INPUTS = {"q0": [2, 5, 4], "k0": [2, 6, 4], "v0": [2, 6, 3], "m": [1, 1, 6]}


SOURCE = (
    "model sdpa(" + ", ".join(f"{k}: {f32(v)}" for k, v in INPUTS.items()) + ") -> ("
    + ", ".join(f"{o}: {f32(SHAPES[o])}" for o in OUTPUTS) + ") {\n"
    "  param a: f32[2, 5, 4] = normal(std=1)\n"
    "  param b: f32[2, 6, 4] = normal(std=1)\n"
    "  param c: f32[2, 6, 3] = normal(std=1)\n"
    "  q = q0 * a\n  k = k0 + b\n  v = v0 * c\n"
    "  y = scaled_dot_product_attention(q, k, v, mask=m)\n"
    "  z = scaled_dot_product_attention(q, k[:, :, 0:5], v[:, :, 0:5], is_causal=true, scale=0.7)\n"
    "}\n"
    "train sdpa {\n"
    + "".join(f"  t_{o}: {f32(SHAPES[o])}\n" for o in OUTPUTS)
    + "  loss = " + " + ".join(f"mse({o}, t_{o})" for o in OUTPUTS) + "\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9)\n"
    "}\n")


def attend(q, k, v, scale, bias):
    s = q @ k.transpose(-2, -1) * scale + bias
    return torch.softmax(s, dim=-1) @ v


def forward(x, w):
    q, k, v = x["q0"] * w["a"], x["k0"] + w["b"], x["v0"] * w["c"]
    neg = torch.tensor(-math.inf, dtype=q.dtype)
    mask_bias = torch.where(x["m"] > 0.5, torch.zeros((), dtype=q.dtype), neg)
    causal = torch.triu(torch.full((5, 5), -math.inf, dtype=q.dtype), diagonal=1)
    return {
        "y": attend(q, k, v, 1 / math.sqrt(4), mask_bias),
        "z": attend(q, k[:, :, 0:5], v[:, :, 0:5], 0.7, causal),
    }


def inputs(n):
    x = {k: torch.randn(n, *v) for k, v in INPUTS.items()}
    m = (torch.rand(n, 1, 1, 6) > 0.35).float()
    m[:, :, :, 0] = 1.0  # every row keeps a key
    x["m"] = m
    return x


def main():
    torch.manual_seed(17)
    w = {"a": torch.randn(2, 5, 4), "b": torch.randn(2, 6, 4), "c": torch.randn(2, 6, 3)}
    meta = {"script": "tests/golden/make_sdpa_goldens.py", "source": SOURCE}
    write_model_goldens(os.path.join(HERE, "sdpa_goldens.safetensors"), meta, w, inputs, forward, SHAPES)


if __name__ == "__main__":
    main()
