#!/usr/bin/env python3
"""make_encoder_goldens.py -- golden numbers for transformer_encoder_layer
against nn.TransformerEncoderLayer(batch_first=True)
(tests/unit/test_encoder_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_encoder_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata): two layers in a row, state_dict names as PyTorch's,
  y = enc2(enc1(x, src_key_padding_mask=pad))
  enc1 = nn.TransformerEncoderLayer(8, 2, 16, dropout=0, batch_first=True)        (post-norm, relu)
  enc2 = nn.TransformerEncoderLayer(8, 2, 12, dropout=0, activation="gelu",
                                    layer_norm_eps=1e-6, norm_first=True, batch_first=True)
with dropout 0 (PyTorch's random stream is not dnnc's), the modules in
training mode (PyTorch's inference fast path is another kernel), the norms'
weights and biases made non-trivial, and a loss mse(y, t).  References are
computed in float64 (a double copy of the modules) from the float32 values
and stored as float32.  Writes encoder_goldens.safetensors:

  enc1.*, enc2.*             the parameters
  b<n>.x, b<n>.pad           inference inputs at batch n = 1 and 4 (pad: 1 = padding)
  b<n>.y                     the output there
  train.x, train.pad, train.t_y   one training batch of 4
  train.loss [1]             its loss
  grad.<param>               the gradients (= SGD's momentum buffer after the step)
"""
import copy
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SOURCE = (
    "model enc(x: f32[N, 5, 8], pad: f32[N, 5]) -> (y: f32[N, 5, 8]) {\n"
    "  h = x |> enc1: transformer_encoder_layer(8, 2, dim_feedforward=16, dropout=0.0, src_key_padding_mask=pad)\n"
    "  y = h |> enc2: transformer_encoder_layer(8, 2, dim_feedforward=12, dropout=0.0, activation=\"gelu\", "
    "layer_norm_eps=1e-6, norm_first=true)\n"
    "}\n"
    "train enc {\n  t_y: f32[N, 5, 8]\n  loss = mse(y, t_y)\n  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n")


def forward(m, x, pad):
    e1, e2 = m
    return e2(e1(x, src_key_padding_mask=pad > 0.5))


def inputs(n):
    pad = (torch.rand(n, 5) > 0.7).float()
    pad[:, 0] = 0.0
    return torch.randn(n, 5, 8), pad


def main():
    torch.manual_seed(23)
    e1 = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    e2 = nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation="gelu", layer_norm_eps=1e-6,
                                    norm_first=True, batch_first=True)
    with torch.no_grad():
        for mod in (e1, e2):
            for nm in ("norm1", "norm2"):
                getattr(mod, nm).weight.normal_(1, 0.3)
                getattr(mod, nm).bias.normal_(0, 0.3)
            mod.self_attn.in_proj_bias.normal_(0, 0.3)
    e1.train(), e2.train()
    out = {}
    for pre, mod in (("enc1", e1), ("enc2", e2)):
        for k, v in mod.state_dict().items():
            out[f"{pre}.{k}"] = v.clone()
    m64 = (copy.deepcopy(e1).double(), copy.deepcopy(e2).double())
    for n in (1, 4):
        x, pad = inputs(n)
        out[f"b{n}.x"], out[f"b{n}.pad"] = x, pad
        with torch.no_grad():
            y = forward(m64, x.double(), pad)
            y32 = forward((e1, e2), x, pad)
        out[f"b{n}.y"] = y.float()
        print(f"batch {n} y: fp32 vs fp64 {((y32.double() - y).abs().max() / y.abs().max()).item():.2e}")
    n = 4
    x, pad = inputs(n)
    t = torch.randn(n, 5, 8)
    out["train.x"], out["train.pad"], out["train.t_y"] = x, pad, t
    loss = F.mse_loss(forward(m64, x.double(), pad), t.double())
    loss.backward()
    out["train.loss"] = loss.detach().float().reshape(1)
    for pre, mod in (("enc1", m64[0]), ("enc2", m64[1])):
        for k, v in mod.named_parameters():
            out[f"grad.{pre}.{k}"] = v.grad.float()
    print(f"loss {loss.item():.6f}")
    print(",".join(k[5:] for k in out if k.startswith("grad.")))
    meta = {"script": "tests/golden/make_encoder_goldens.py", "source": SOURCE, "outputs": "y"}
    write_safetensors(os.path.join(HERE, "encoder_goldens.safetensors"), out, meta)


if __name__ == "__main__":
    main()
