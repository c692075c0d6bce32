#!/usr/bin/env python3
"""make_transformer_goldens.py -- golden numbers for transformer against
nn.Transformer(batch_first=True) (tests/unit/test_transformer_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_transformer_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata), its parameters under nn.Transformer's state_dict
names (encoder.layers.<i>.*, encoder.norm.*, decoder.layers.<i>.*,
decoder.norm.*):
  y = tf(src, tgt, tgt_mask=causal, src_key_padding_mask=pad,
         memory_key_padding_mask=pad)
  tf = nn.Transformer(16, 2, 2, 2, 24, dropout=0, activation="gelu", batch_first=True)
with dropout 0 (PyTorch's random stream is not dnnc's), the module in
training mode (PyTorch's inference fast path is another kernel), the norms'
weights and biases made non-trivial, and a loss mse(y, t).  References are
float64 (a double copy of the module) from the float32 values, stored as
float32.  Writes transformer_goldens.safetensors:

  tf.*                       the parameters
  b<n>.src, b<n>.tgt, b<n>.pad   inference inputs at batch n = 1 and 4 (pad: 1 = padding)
  b<n>.y                     the output there
  train.*, train.loss [1], grad.<param>   one SGD step at batch 4

and the same for transformer_encoder against nn.TransformerEncoder
(ENCODER_SOURCE: 2 pre-norm relu layers and the final norm, causal, the
padding masked) in transformer_encoder_goldens.safetensors (enc.layers.<i>.*,
enc.norm.*; b<n>.x, b<n>.pad, b<n>.y).
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_goldens import write_module_goldens  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SOURCE = (
    "model tf(src: f32[N, 6, 16], tgt: f32[N, 5, 16], pad: f32[N, 6]) -> (y: f32[N, 5, 16]) {\n"
    "  y = tf: transformer(src, tgt, d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=2, "
    "dim_feedforward=24, dropout=0.0, activation=\"gelu\", src_key_padding_mask=pad, "
    "memory_key_padding_mask=pad, tgt_is_causal=true)\n"
    "}\n"
    "train tf {\n  t_y: f32[N, 5, 16]\n  loss = mse(y, t_y)\n  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n")


ENCODER_SOURCE = (
    "model enc(x: f32[N, 6, 16], pad: f32[N, 6]) -> (y: f32[N, 6, 16]) {\n"
    "  y = x |> enc: transformer_encoder(2, 16, 4, dim_feedforward=20, dropout=0.0, norm_first=true, "
    "src_key_padding_mask=pad, is_causal=true)\n"
    "}\n"
    "train enc {\n  t_y: f32[N, 6, 16]\n  loss = mse(y, t_y)\n  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n")


def encoder_forward(m, x):
    causal = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    return {"y": m["enc"](x["x"], mask=causal, src_key_padding_mask=x["pad"] > 0.5)}


def encoder_inputs(n):
    pad = (torch.rand(n, 6) > 0.7).float()
    pad[:, 0] = 0.0
    return {"x": torch.randn(n, 6, 16), "pad": pad}


def nontrivial(mod):
    with torch.no_grad():
        for name, p in mod.named_parameters():
            if "norm" in name:
                p.normal_(1 if name.endswith("weight") else 0, 0.3)
            if "in_proj_bias" in name:
                p.normal_(0, 0.3)
    mod.train()


def forward(m, x):
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    pad = x["pad"] > 0.5
    return {"y": m["tf"](x["src"], x["tgt"], tgt_mask=causal, src_key_padding_mask=pad,
                         memory_key_padding_mask=pad)}


def inputs(n):
    pad = (torch.rand(n, 6) > 0.7).float()
    pad[:, 0] = 0.0
    return {"src": torch.randn(n, 6, 16), "tgt": torch.randn(n, 5, 16), "pad": pad}


def main():
    torch.manual_seed(37)
    tf = nn.Transformer(16, 2, 2, 2, 24, dropout=0.0, activation="gelu", batch_first=True)
    nontrivial(tf)
    meta = {"script": "tests/golden/make_transformer_goldens.py", "source": SOURCE}
    write_module_goldens(os.path.join(HERE, "transformer_goldens.safetensors"), meta, {"tf": tf}, inputs, forward,
                         {"y": [5, 16]})
    layer = nn.TransformerEncoderLayer(16, 4, 20, dropout=0.0, norm_first=True, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16))
    nontrivial(enc)
    meta = {"script": "tests/golden/make_transformer_goldens.py", "source": ENCODER_SOURCE}
    write_module_goldens(os.path.join(HERE, "transformer_encoder_goldens.safetensors"), meta, {"enc": enc},
                         encoder_inputs, encoder_forward, {"y": [6, 16]})
    print("\n".join(f"enc.{k}" for k in enc.state_dict()))


if __name__ == "__main__":
    main()
