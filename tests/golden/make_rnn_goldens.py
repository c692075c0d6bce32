#!/usr/bin/env python3
"""make_rnn_goldens.py -- golden numbers for the recurrent layers
(tests/unit/test_rnn_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_rnn_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic (seed 0): a
rerun writes an identical file.

Cases (input size 3, hidden 5, num_layers=2, bidirectional, batch_first):
  rnn       nn.RNN (tanh)
  rnn_relu  nn.RNN(nonlinearity='relu')
  lstm      nn.LSTM
  gru       nn.GRU
For each, under the prefix <case>.:
  net.<param>                       the initial weights (PyTorch's names)
  x.T<T>.b<B> [B,T,3]               inputs, T in 4, 6; B in 2, 3
  y.T<T>.b<B> [B,T,10]              the output sequence
  h.T<T>.b<B> [B,4,5]               h_n with its first two axes swapped (dnnc's
                                    states are batch first); lstm: c.T<T>.b<B>
  train.x [3,4,3], train.ty [3,4,10], train.th [3,4,5]
  train.loss [1]                    mse(y, ty) + mse(h_n, th) (batch first)
  train.grad.<param>                the gradients (lr 0.1, momentum 0.9: the
                                    momentum buffers after one SGD step)
  train.step1.<param>               lstm only: the weights after that step
and lstm_len: the lstm case's network on a batch of 3 of T = 6 with
lengths [6, 2, 4] (pack_padded_sequence, enforce_sorted=False; the output
is zero past each length, pad_packed_sequence): lstm_len.x, lstm_len.len
(i32), lstm_len.y, lstm_len.h, lstm_len.c, and its training step's
lstm_len.ty, lstm_len.th, lstm_len.loss, lstm_len.grad.<param>.

References are computed in float64 from the float32 weights and stored as float32.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
I, H, LAYERS = 3, 5, 2


def make(case):
    kw = dict(input_size=I, hidden_size=H, num_layers=LAYERS, bidirectional=True, batch_first=True)
    if case == "lstm":
        return nn.LSTM(**kw)
    if case == "gru":
        return nn.GRU(**kw)
    return nn.RNN(nonlinearity="relu" if case == "rnn_relu" else "tanh", **kw)


def run(net, x, lengths=None):
    """(y, h_n, c_n or None) with the states batch first."""
    if lengths is not None:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y, st = net(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
    else:
        y, st = net(x)
    h, c = (st if isinstance(st, tuple) else (st, None))
    return y, h.transpose(0, 1), None if c is None else c.transpose(0, 1)


def train_step(net, x, ty, th, out, prefix, lengths=None, steps=False):
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad()
    y, h, _ = run(net, x, lengths)
    loss = F.mse_loss(y, ty) + F.mse_loss(h, th)
    loss.backward()
    out[f"{prefix}.loss"] = loss.detach().reshape(1).float()
    for name, p in net.named_parameters():
        out[f"{prefix}.grad.{name}"] = p.grad.float().clone()
    if not steps:
        return
    opt.step()
    for name, p in net.named_parameters():
        out[f"{prefix}.step1.{name}"] = p.detach().float().clone()


def uniform(shape, gen):
    return torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    out = {}
    for case in ("rnn", "rnn_relu", "lstm", "gru"):
        net = make(case)
        init = {k: v.float().clone() for k, v in net.state_dict().items()}
        for k, v in init.items():
            out[f"{case}.net.{k}"] = v
        ref = make(case).double()
        ref.load_state_dict({k: v.double() for k, v in init.items()})
        for t in (4, 6):
            for b in (2, 3):
                x = uniform((b, t, I), gen).float().double()
                y, h, c = run(ref, x)
                out[f"{case}.x.T{t}.b{b}"] = x.float()
                out[f"{case}.y.T{t}.b{b}"] = y.detach().float()
                out[f"{case}.h.T{t}.b{b}"] = h.detach().float()
                if c is not None:
                    out[f"{case}.c.T{t}.b{b}"] = c.detach().float()
        x = uniform((3, 4, I), gen).float().double()
        ty = uniform((3, 4, 2 * H), gen).float().double()
        th = uniform((3, 2 * LAYERS, H), gen).float().double()
        out[f"{case}.train.x"], out[f"{case}.train.ty"], out[f"{case}.train.th"] = x.float(), ty.float(), th.float()
        train_step(ref, x, ty, th, out, f"{case}.train", steps=case == "lstm")
        if case == "lstm":
            ref = make(case).double()
            ref.load_state_dict({k: v.double() for k, v in init.items()})
            lengths = torch.tensor([6, 2, 4])
            x = uniform((3, 6, I), gen).float().double()
            y, h, c = run(ref, x, lengths)
            out["lstm_len.x"], out["lstm_len.len"] = x.float(), lengths.int()
            out["lstm_len.y"], out["lstm_len.h"], out["lstm_len.c"] = y.detach().float(), h.detach().float(), c.detach().float()
            ty = uniform((3, 6, 2 * H), gen).float().double()
            th = uniform((3, 2 * LAYERS, H), gen).float().double()
            out["lstm_len.ty"], out["lstm_len.th"] = ty.float(), th.float()
            train_step(ref, x, ty, th, out, "lstm_len", lengths)
    write_safetensors(os.path.join(HERE, "rnn_goldens.safetensors"), out, {"input": str(I), "hidden": str(H)})


if __name__ == "__main__":
    main()
