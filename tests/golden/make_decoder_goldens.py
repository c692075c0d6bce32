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
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_goldens import write_module_goldens  # noqa: E402

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


def forward(m, x):
    h = m["dec1"](x["x"], x["mem"], tgt_mask=x["am"] > 0.5, memory_key_padding_mask=x["pad"] > 0.5)
    return {"y": m["dec2"](h, x["mem"])}


def inputs(n):
    pad = (torch.rand(n, 6) > 0.7).float()
    pad[:, 0] = 0.0
    return {"x": torch.randn(n, 5, 8), "mem": torch.randn(n, 6, 8), "pad": pad, "am": CAUSAL}


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
    meta = {"script": "tests/golden/make_decoder_goldens.py", "source": SOURCE}
    write_module_goldens(os.path.join(HERE, "decoder_goldens.safetensors"), meta, {"dec1": d1, "dec2": d2}, inputs,
                         forward, {"y": [5, 8]})


if __name__ == "__main__":
    main()
