#!/usr/bin/env python3
"""make_decoder_goldens.py -- golden numbers for transformer_decoder_layer
against nn.TransformerDecoderLayer(batch_first=True)
(tests/unit/test_decoder_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_decoder_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata): two layers in a row, state_dict names as PyTorch's,
  y = dec2(dec1(x, mem, tgt_mask=am, memory_key_padding_mask=pad), mem)
  dec1 = nn.TransformerDecoderLayer(8, 2, 16, dropout=0, batch_first=True)        (post-norm, relu)
  dec2 = nn.TransformerDecoderLayer(8, 2, 12, dropout=0, activation="gelu",
                                    layer_norm_eps=1e-6, norm_first=True, batch_first=True)
(am: the causal mask [5, 5] as an input, 1 = may not attend; pad [N, 6]: 1 = a padding key)
with dropout 0 (PyTorch's random stream is not dnnc's), the modules in
training mode (PyTorch's inference fast path is another kernel), the norms'
weights and biases made non-trivial, and a loss mse(y, t).  References are
computed in float64 (a double copy of the modules) from the float32 values
and stored as float32.  Writes decoder_goldens.safetensors:

  dec1.*, dec2.*             the parameters
  b<n>.x, .mem, .pad, .am    inference inputs at batch n = 1 and 4
  b<n>.y                     the output there
  train.<input>, train.t_y  one training batch of 4
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
    "model dec(x: f32[N, 5, 8], mem: f32[N, 6, 8], pad: f32[N, 6], am: f32[5, 5]) -> (y: f32[N, 5, 8]) {\n"
    "  h = x |> dec1: transformer_decoder_layer(mem, 8, 2, dim_feedforward=16, dropout=0.0, tgt_mask=am, "
    "memory_key_padding_mask=pad)\n"
    "  y = h |> dec2: transformer_decoder_layer(mem, 8, 2, dim_feedforward=12, dropout=0.0, activation=\"gelu\", "
    "layer_norm_eps=1e-6, norm_first=true)\n"
    "}\n"
    "train dec {\n  t_y: f32[N, 5, 8]\n  loss = mse(y, t_y)\n  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n")
CAUSAL = torch.triu(torch.ones(5, 5), diagonal=1)


def forward(m, x, mem, pad):
    d1, d2 = m
    h = d1(x, mem, tgt_mask=CAUSAL > 0.5, memory_key_padding_mask=pad > 0.5)
    return d2(h, mem)


def inputs(n):
    pad = (torch.rand(n, 6) > 0.7).float()
    pad[:, 0] = 0.0
    return torch.randn(n, 5, 8), torch.randn(n, 6, 8), pad


def main():
    torch.manual_seed(29)
    d1 = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    d2 = nn.TransformerDecoderLayer(8, 2, 12, dropout=0.0, activation="gelu", layer_norm_eps=1e-6,
                                    norm_first=True, batch_first=True)
    with torch.no_grad():
        for mod in (d1, d2):
            for nm in ("norm1", "norm2", "norm3"):
                getattr(mod, nm).weight.normal_(1, 0.3)
                getattr(mod, nm).bias.normal_(0, 0.3)
            mod.self_attn.in_proj_bias.normal_(0, 0.3)
            mod.multihead_attn.in_proj_bias.normal_(0, 0.3)
    d1.train(), d2.train()
    out = {}
    for pre, mod in (("dec1", d1), ("dec2", d2)):
        for k, v in mod.state_dict().items():
            out[f"{pre}.{k}"] = v.clone()
    m64 = (copy.deepcopy(d1).double(), copy.deepcopy(d2).double())
    for n in (1, 4):
        x, mem, pad = inputs(n)
        out[f"b{n}.x"], out[f"b{n}.mem"], out[f"b{n}.pad"], out[f"b{n}.am"] = x, mem, pad, CAUSAL
        with torch.no_grad():
            y = forward(m64, x.double(), mem.double(), pad)
            y32 = forward((d1, d2), x, mem, pad)
        out[f"b{n}.y"] = y.float()
        print(f"batch {n} y: fp32 vs fp64 {((y32.double() - y).abs().max() / y.abs().max()).item():.2e}")
    n = 4
    x, mem, pad = inputs(n)
    t = torch.randn(n, 5, 8)
    out["train.x"], out["train.mem"], out["train.pad"], out["train.am"], out["train.t_y"] = x, mem, pad, CAUSAL, t
    loss = F.mse_loss(forward(m64, x.double(), mem.double(), pad), t.double())
    loss.backward()
    out["train.loss"] = loss.detach().float().reshape(1)
    for pre, mod in (("dec1", m64[0]), ("dec2", m64[1])):
        for k, v in mod.named_parameters():
            out[f"grad.{pre}.{k}"] = v.grad.float()
    print(f"loss {loss.item():.6f}")
    print(",".join(k[5:] for k in out if k.startswith("grad.")))
    meta = {"script": "tests/golden/make_decoder_goldens.py", "source": SOURCE, "outputs": "y"}
    write_safetensors(os.path.join(HERE, "decoder_goldens.safetensors"), out, meta)


if __name__ == "__main__":
    main()
