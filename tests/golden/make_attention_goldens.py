#!/usr/bin/env python3
"""make_attention_goldens.py -- golden numbers for attention
(tests/unit/test_attention_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_attention_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic (seed 0): a
rerun writes an identical file.

One model per kind, hand-written torch modules with dnnc's parameter names:

  model m(q: f32[N, 3, 4], k: f32[N, S, 6], len: i32[N]) -> (y: f32[N, 3, 3], w: f32[N, 3, S]) {
    r = att: attention(q, KEYS, k, kind=KIND, mask=sequence_mask(len, max_len=S), return_weights=true, EXTRA)
    y = r[0] |> out: dense(3)
    w = r[1]
  }

  dot:      KEYS = k |> kp: dense(4), scale=true   score = q . kp(k) / sqrt(4)
  general:  KEYS = k, att.weight [4, 6]            score = q . (W k)     (Luong)
  additive: KEYS = k, units=5: att.query_proj.weight [5, 4],
            att.key_proj.weight [5, 6], att.v.weight [1, 5]
                                                   score = v . tanh(Wq q + Wk k)  (Bahdanau)

The mask adds (mask - 1) * 1e9 to the scores, as dnnc lowers it (every
length here is >= 1, so no row is all masked).  Forward at key lengths
S = 5, 7 and batch sizes B = 1, 3 (the context through `out`, and the
weights); then one SGD step (lr 0.1, momentum 0.9) at S = 5 on a batch of 4
with mse(y, target).  Writes attention_goldens.safetensors:

  <kind>.<param>                                   initial weights
  <kind>.S<S>.b<B>.{q, k, len (i32), y, w}         forward
  <kind>.train.{q, k, len, target, loss [1]}       the step's batch and loss
  <kind>.grad.<param>, <kind>.step1.<param>        gradients and weights after it

References are computed in float64 from the float32 weights and stored as float32.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TQ, D, DK, U, K = 3, 4, 6, 5, 3
MASK_BIAS = 1e9


def attend(scores, values, mask):
    """softmax over the keys of scores [B, Tq, Tk] + (mask - 1) * 1e9, and the context."""
    scores = scores + (mask[:, None, :] - 1) * MASK_BIAS
    w = torch.softmax(scores, dim=-1)
    return w @ values, w


class General(nn.Linear):
    """Luong general: score = q . (W k), W = this Linear(Dk, D) without bias ('att.weight')."""

    def __init__(self):
        super().__init__(DK, D, bias=False)

    def score(self, q, k):
        return q @ super().forward(k).transpose(1, 2)


class Additive(nn.Module):
    """Bahdanau: score = v . tanh(Wq q + Wk k)."""

    def __init__(self):
        super().__init__()
        self.query_proj = nn.Linear(D, U, bias=False)
        self.key_proj = nn.Linear(DK, U, bias=False)
        self.v = nn.Linear(U, 1, bias=False)

    def score(self, q, k):
        h = torch.tanh(self.query_proj(q)[:, :, None, :] + self.key_proj(k)[:, None, :, :])
        return self.v(h).squeeze(-1)


class Net(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        if kind == "dot":
            self.kp = nn.Linear(DK, D)
        else:
            self.att = General() if kind == "general" else Additive()
        self.out = nn.Linear(DK, K)

    def forward(self, q, k, ln):
        mask = (torch.arange(k.shape[1])[None, :] < ln[:, None].long()).to(k.dtype)
        if self.kind == "dot":
            s = q @ self.kp(k).transpose(1, 2) / math.sqrt(D)
        else:
            s = self.att.score(q, k)
        c, w = attend(s, k, mask)
        return self.out(c), w


def batch(b, s, gen):
    q = torch.rand((b, TQ, D), generator=gen) * 2 - 1
    k = torch.rand((b, s, DK), generator=gen) * 2 - 1
    ln = torch.randint(1, s + 1, (b,), generator=gen)
    ln[0] = s if b > 1 else ln[0]
    return q, k, ln


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    out = {}
    for kind in ("dot", "general", "additive"):
        net = Net(kind)
        init = {n: p.detach().float().clone() for n, p in net.named_parameters()}
        for n, p in init.items():
            out[f"{kind}.{n}"] = p
        ref = Net(kind).double()
        ref.load_state_dict({n: p.double() for n, p in init.items()})
        for s in (5, 7):
            for b in (1, 3):
                q, k, ln = batch(b, s, gen)
                y, w = ref(q.double(), k.double(), ln)
                key = f"{kind}.S{s}.b{b}"
                out[f"{key}.q"], out[f"{key}.k"], out[f"{key}.len"] = q, k, ln.int()
                out[f"{key}.y"], out[f"{key}.w"] = y.detach().float(), w.detach().float()
        q, k, ln = batch(4, 5, gen)
        ln[1:] = torch.tensor([2, 1, 4])
        target = torch.rand((4, TQ, K), generator=gen) * 2 - 1
        opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
        opt.zero_grad()
        loss = F.mse_loss(ref(q.double(), k.double(), ln)[0], target.double())
        loss.backward()
        for n, t in (("q", q), ("k", k), ("len", ln.int()), ("target", target)):
            out[f"{kind}.train.{n}"] = t
        out[f"{kind}.train.loss"] = loss.detach().reshape(1).float()
        for n, p in ref.named_parameters():
            out[f"{kind}.grad.{n}"] = p.grad.float().clone()
        opt.step()
        for n, p in ref.named_parameters():
            out[f"{kind}.step1.{n}"] = p.detach().float().clone()
    write_safetensors(os.path.join(HERE, "attention_goldens.safetensors"), out, {"mask_bias": str(MASK_BIAS)})


if __name__ == "__main__":
    main()
