"""model_goldens.py -- the shared part of the scripts that write a golden
file for one model with named parameters (make_norm_goldens.py,
make_permute_goldens.py, make_sdpa_goldens.py): the inputs and outputs at
two batch sizes and one SGD step's loss and gradients, in the layout
tests/unit/support/golden.c reads (DnTestGoldenSpec):

  <param>                    the parameters 'w'
  b<n>.<input>, b<n>.<output>  at each batch size n
  train.<input>, train.t_<output>  one training batch
  train.loss [1]             mean of one mse per output against its target
  grad.<param>               the gradients

References are computed in float64 from the float32 values and stored as
float32; each output's fp32-vs-fp64 distance is printed.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402


def type_text(dims):
    """The .dnn type of an f32 tensor [N, dims...]."""
    return "f32[N, " + ", ".join(str(d) for d in dims) + "]"


def write_model_goldens(path, meta, w, inputs, forward, shapes, batches=(1, 4), train_n=4):
    """inputs(n) -> {name: tensor} (drawn in a fixed order); forward(x, w) ->
    {output: tensor}; shapes: {output: dims after N}, in output order."""
    out = dict(w)
    outputs = list(shapes)
    w64 = {k: v.double() for k, v in w.items()}
    for n in batches:
        x = inputs(n)
        for k, v in x.items():
            out[f"b{n}.{k}"] = v
        ys = forward({k: v.double() for k, v in x.items()}, w64)
        ys32 = forward(x, w)
        for o in outputs:
            out[f"b{n}.{o}"] = ys[o].float()
            err = ((ys32[o].double() - ys[o]).abs().max() / ys[o].abs().max().clamp_min(1e-30)).item()
            print(f"batch {n} {o}: fp32 vs fp64 {err:.2e}")
    x = inputs(train_n)
    for k, v in x.items():
        out[f"train.{k}"] = v
    targets = {o: torch.randn(train_n, *shapes[o]) for o in outputs}
    for o in outputs:
        out[f"train.t_{o}"] = targets[o]
    wd = {k: v.double().requires_grad_(True) for k, v in w.items()}
    ys = forward({k: v.double() for k, v in x.items()}, wd)
    loss = sum(F.mse_loss(ys[o], targets[o].double()) for o in outputs)
    loss.backward()
    out["train.loss"] = loss.detach().float().reshape(1)
    for k in w:
        out[f"grad.{k}"] = wd[k].grad.float()
    print(f"loss {loss.item():.6f}")
    write_safetensors(path, out, dict(meta, outputs=",".join(outputs)))
