"""model_goldens.py -- the shared part of the scripts that write a golden
file for one model with named parameters (make_norm_goldens.py,
make_permute_goldens.py, make_sdpa_goldens.py; with PyTorch modules,
make_mha_goldens.py, make_encoder_goldens.py, make_decoder_goldens.py):
the inputs and outputs at
two batch sizes and one SGD step's loss and gradients, in the layout
tests/unit/support/golden.c reads (DnTestGoldenSpec):

  <param>                    the parameters 'w'
  b<n>.<input>, b<n>.<output>  at each batch size n
  train.<input>, train.t_<output>  one training batch
  train.loss [1]             mean of one mse per output against its target
  grad.<param>               the gradients

References are computed in float64 from the float32 values and stored as
float32 (integer inputs, token ids, stay as they are); each output's
fp32-vs-fp64 distance is printed.
"""
import copy
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402


def type_text(dims):
    """The .dnn type of an f32 tensor [N, dims...]."""
    return "f32[N, " + ", ".join(str(d) for d in dims) + "]"


def _write(path, meta, out, inputs, forward64, forward32, grads, shapes, batches, train_n):
    """The shared layout: out (the parameters so far), then the batches, one
    training batch, its loss (forward64 after the batches' calls) and
    grads() -> {name: gradient} after loss.backward()."""
    outputs = list(shapes)
    for n in batches:
        x = inputs(n)
        for k, v in x.items():
            out[f"b{n}.{k}"] = v
        with torch.no_grad():
            ys = forward64({k: v.double() if v.is_floating_point() else v for k, v in x.items()})
            ys32 = forward32(x)
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
    ys = forward64({k: v.double() if v.is_floating_point() else v for k, v in x.items()})
    loss = sum(F.mse_loss(ys[o], targets[o].double()) for o in outputs)
    loss.backward()
    out["train.loss"] = loss.detach().float().reshape(1)
    for k, g in grads().items():
        out[f"grad.{k}"] = g.float()
    print(f"loss {loss.item():.6f}")
    write_safetensors(path, out, dict(meta, outputs=",".join(outputs)))


def write_model_goldens(path, meta, w, inputs, forward, shapes, batches=(1, 4), train_n=4):
    """inputs(n) -> {name: tensor} (drawn in a fixed order); forward(x, w) ->
    {output: tensor}; shapes: {output: dims after N}, in output order."""
    w64 = {k: v.double().requires_grad_(True) for k, v in w.items()}
    _write(path, meta, dict(w), inputs, lambda x: forward(x, w64), lambda x: forward(x, w),
           lambda: {k: v.grad for k, v in w64.items()}, shapes, batches, train_n)


def write_module_goldens(path, meta, modules, inputs, forward, shapes, batches=(1, 4), train_n=4):
    """The same file for PyTorch modules whose state_dict names are the
    model's parameters: modules {label: nn.Module} (their state_dicts are
    written as <label>.<name>, their gradients as grad.<label>.<name>; the
    label "" gives the bare names, for a whole model);
    inputs(n) -> {name: tensor}; forward(mods, x) -> {output: tensor}, mods
    {label: module} in float32 or in a float64 copy."""
    def key(pre, k):
        return f"{pre}.{k}" if pre else k

    out = {key(pre, k): v.clone() for pre, mod in modules.items() for k, v in mod.state_dict().items()}
    m64 = {pre: copy.deepcopy(mod).double() for pre, mod in modules.items()}
    _write(path, meta, out, inputs, lambda x: forward(m64, x), lambda x: forward(modules, x),
           lambda: {key(pre, k): v.grad for pre, mod in m64.items() for k, v in mod.named_parameters()}, shapes,
           batches, train_n)
