#!/usr/bin/env python3
"""make_tied_goldens.py -- golden numbers for tied weights: one parameter
used by embedding(weight=...) and by dense(weight=...), as a language model
ties its input embedding to its output projection
(tests/unit/test_tied_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_tied_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic: a rerun writes
identical files.

The model, SOURCE below, in PyTorch:  y = F.linear(tanh(F.embedding(tok, shared) * 2), shared)
so shared's gradient is the sum of both uses'.  Writes tied_goldens.safetensors
in model_goldens.py's layout (shared; b<n>.tok, b<n>.y at n = 1 and 4; one
SGD step at batch 4: train.*, grad.shared).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_goldens import write_model_goldens  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SOURCE = (
    "model tied(tok: i32[N, 7]) -> (y: f32[N, 7, 11]) {\n"
    "  param shared: f32[11, 8] = normal(0, 0.3)\n"
    "  h = tok |> embedding(11, 8, weight=shared)\n"
    "  y = h * 2 |> tanh |> dense(11, bias=false, weight=shared)\n"
    "}\n"
    "train tied {\n  t_y: f32[N, 7, 11]\n  loss = mse(y, t_y)\n  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n")


def forward(x, w):
    return {"y": F.linear(torch.tanh(F.embedding(x["tok"].long(), w["shared"]) * 2), w["shared"])}


def inputs(n):
    return {"tok": torch.randint(0, 11, (n, 7), dtype=torch.int32)}


def main():
    torch.manual_seed(41)
    w = {"shared": torch.randn(11, 8) * 0.5}
    meta = {"script": "tests/golden/make_tied_goldens.py", "source": SOURCE}
    write_model_goldens(os.path.join(HERE, "tied_goldens.safetensors"), meta, w, inputs, forward, {"y": [7, 11]})


if __name__ == "__main__":
    main()
