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
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_goldens import write_module_goldens  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SOURCE = (
    "model enc(x: f32[N, 5, 8], pad: f32[N, 5]) -> (y: f32[N, 5, 8]) {\n"
    "  h = x |> enc1: transformer_encoder_layer(8, 2, dim_feedforward=16, dropout=0.0, src_key_padding_mask=pad)\n"
    "  y = h |> enc2: transformer_encoder_layer(8, 2, dim_feedforward=12, dropout=0.0, activation=\"gelu\", "
    "layer_norm_eps=1e-6, norm_first=true)\n"
    "}\n"
    "train enc {\n  t_y: f32[N, 5, 8]\n  loss = mse(y, t_y)\n  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n")


def forward(m, x):
    return {"y": m["enc2"](m["enc1"](x["x"], src_key_padding_mask=x["pad"] > 0.5))}


def inputs(n):
    pad = (torch.rand(n, 5) > 0.7).float()
    pad[:, 0] = 0.0
    return {"x": torch.randn(n, 5, 8), "pad": pad}


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
    meta = {"script": "tests/golden/make_encoder_goldens.py", "source": SOURCE}
    write_module_goldens(os.path.join(HERE, "encoder_goldens.safetensors"), meta, {"enc1": e1, "enc2": e2}, inputs,
                         forward, {"y": [5, 8]})


if __name__ == "__main__":
    main()
