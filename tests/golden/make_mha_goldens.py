#!/usr/bin/env python3
"""make_mha_goldens.py -- golden numbers for multihead_attention against
nn.MultiheadAttention(batch_first=True) (tests/unit/test_mha_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_mha_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

One model, SOURCE below (the C test compiles exactly this text, which travels
in the file's metadata), with two nn.MultiheadAttention(8, 2,
batch_first=True) modules whose state_dict names are the dnnc parameters':
  y = sa(x, x, x, key_padding_mask=pad)     self-attention, padded keys (pad: 1 = padding)
  z = ca(x, mem, mem, attn_mask=causal)     cross-attention with an attn_mask [5, 6]
                                            (1 = may not attend: j > i)
(need_weights=False; the attn_mask is the model input am), and a loss that is the sum of one mse per output
against its own target.  The module weights are PyTorch's initialisation
for seed 19, the biases made non-zero.  References are computed in float64
(a double copy of each module) from the float32 values and stored as float32.
Writes mha_goldens.safetensors:

  sa.*, ca.*                 the parameters (in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias)
  b<n>.x, .mem, .pad, .am    inference inputs at batch n = 1 and 4
  b<n>.y, b<n>.z             the outputs there
  train.<input>, train.t_y, train.t_z   one training batch of 4
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
SHAPES = {"y": [5, 8], "z": [5, 8]}
CAUSAL = torch.triu(torch.ones(5, 6), diagonal=1)

SOURCE = (
    "model mha(x: f32[N, 5, 8], mem: f32[N, 6, 8], pad: f32[N, 5], am: f32[5, 6]) -> (y: f32[N, 5, 8], z: f32[N, 5, 8]) {\n"
    "  y = x |> sa: multihead_attention(num_heads=2, key_padding_mask=pad)\n"
    "  z = x |> ca: multihead_attention(mem, mem, num_heads=2, attn_mask=am)\n"
    "}\n"
    "train mha {\n  t_y: f32[N, 5, 8]\n  t_z: f32[N, 5, 8]\n"
    "  loss = mse(y, t_y) + mse(z, t_z)\n"
    "  optimizer = sgd(lr=0.1, momentum=0.9)\n"
    "}\n")


def forward(m, x):
    y, _ = m["sa"](x["x"], x["x"], x["x"], key_padding_mask=x["pad"] > 0.5, need_weights=False)
    z, _ = m["ca"](x["x"], x["mem"], x["mem"], attn_mask=x["am"] > 0.5, need_weights=False)
    return {"y": y, "z": z}


def inputs(n):
    pad = (torch.rand(n, 5) > 0.7).float()
    pad[:, 0] = 0.0  # every row keeps a key
    return {"x": torch.randn(n, 5, 8), "mem": torch.randn(n, 6, 8), "pad": pad, "am": CAUSAL}


def main():
    torch.manual_seed(19)
    sa, ca = nn.MultiheadAttention(8, 2, batch_first=True), nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        for mod in (sa, ca):
            mod.in_proj_bias.normal_(0, 0.3)
            mod.out_proj.bias.normal_(0, 0.3)
    meta = {"script": "tests/golden/make_mha_goldens.py", "source": SOURCE}
    write_module_goldens(os.path.join(HERE, "mha_goldens.safetensors"), meta, {"sa": sa, "ca": ca}, inputs, forward,
                         SHAPES)


if __name__ == "__main__":
    main()
