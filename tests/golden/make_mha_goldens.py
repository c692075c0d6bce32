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
import copy
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUTS = ["y", "z"]
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


def forward(m, x, mem, pad, causal):
    sa, ca = m
    y, _ = sa(x, x, x, key_padding_mask=pad > 0.5, need_weights=False)
    z, _ = ca(x, mem, mem, attn_mask=causal > 0.5, need_weights=False)
    return {"y": y, "z": z}


def inputs(n):
    pad = (torch.rand(n, 5) > 0.7).float()
    pad[:, 0] = 0.0  # every row keeps a key
    return torch.randn(n, 5, 8), torch.randn(n, 6, 8), pad


def main():
    torch.manual_seed(19)
    sa, ca = nn.MultiheadAttention(8, 2, batch_first=True), nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        for mod in (sa, ca):
            mod.in_proj_bias.normal_(0, 0.3)
            mod.out_proj.bias.normal_(0, 0.3)
    out = {}
    for pre, mod in (("sa", sa), ("ca", ca)):
        for k, v in mod.state_dict().items():
            out[f"{pre}.{k}"] = v.clone()
    m64 = (copy.deepcopy(sa).double(), copy.deepcopy(ca).double())
    for n in (1, 4):
        x, mem, pad = inputs(n)
        out[f"b{n}.x"], out[f"b{n}.mem"], out[f"b{n}.pad"], out[f"b{n}.am"] = x, mem, pad, CAUSAL
        with torch.no_grad():
            ys = forward(m64, x.double(), mem.double(), pad, CAUSAL)
            ys32 = forward((sa, ca), x, mem, pad, CAUSAL)
        for o in OUTPUTS:
            out[f"b{n}.{o}"] = ys[o].float()
            err = ((ys32[o].double() - ys[o]).abs().max() / ys[o].abs().max().clamp_min(1e-30)).item()
            print(f"batch {n} {o}: fp32 vs fp64 {err:.2e}")
    n = 4
    x, mem, pad = inputs(n)
    out["train.x"], out["train.mem"], out["train.pad"], out["train.am"] = x, mem, pad, CAUSAL
    targets = {o: torch.randn(n, *SHAPES[o]) for o in OUTPUTS}
    for o in OUTPUTS:
        out[f"train.t_{o}"] = targets[o]
    ys = forward(m64, x.double(), mem.double(), pad, CAUSAL)
    loss = sum(F.mse_loss(ys[o], targets[o].double()) for o in OUTPUTS)
    loss.backward()
    out["train.loss"] = loss.detach().float().reshape(1)
    for pre, mod in (("sa", m64[0]), ("ca", m64[1])):
        for k, v in mod.named_parameters():
            out[f"grad.{pre}.{k}"] = v.grad.float()
    print(f"loss {loss.item():.6f}")
    meta = {"script": "tests/golden/make_mha_goldens.py", "source": SOURCE, "outputs": ",".join(OUTPUTS)}
    write_safetensors(os.path.join(HERE, "mha_goldens.safetensors"), out, meta)


if __name__ == "__main__":
    main()
