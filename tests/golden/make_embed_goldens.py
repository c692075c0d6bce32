#!/usr/bin/env python3
"""make_embed_goldens.py -- golden numbers for the embedding family
(tests/unit/test_embed_golden.c).

Run by hand (never by the tests):  /usr/bin/python3 tests/golden/make_embed_goldens.py
Needs PyTorch (Debian's python3-torch 1.13).  Deterministic (seed 0): a
rerun writes an identical file.

Embedding: the model  y = tok |> emb: embedding(11, 4, padding_idx=0) |> fc: dense(3)
(nn.Embedding(11, 4, padding_idx=0) then nn.Linear(4, 3), so the padding row
is PyTorch's zero row) at sequence lengths T = 5 and T = 8, forward at batch
sizes 1 and 3; then one SGD step (lr 0.1, momentum 0.9) at T = 5 on a batch
of 4 with mse(y, target): the loss, and the gradients (the momentum buffers
after one step; the padding row's is zero) and updated weights.  Writes
embed_goldens.safetensors:

  emb.weight [11,4], fc.weight [3,4], fc.bias [3]    initial weights
  tok.T<T>.b<B> i32 [B,T], y.T<T>.b<B> [B,T,3]        forward, T in 5, 8; B in 1, 3
  train.tok i32 [4,5], train.target [4,5,3], train.loss [1]
  grad.<param>, step1.<param>                        after the step

Sequence cross-entropy: logits [B, 6, 4] = Linear(5, 4) of x [B, 6, 5], labels
[B, 6] with some positions -100 (PyTorch's default ignore_index), the loss
F.cross_entropy over [B*6, 4] (reduction mean over the kept positions);
case ce at B = 4 (no smoothing) and ce_smooth at B = 3 (label_smoothing 0.1):

  <case>.x, <case>.label i32, <case>.fc.weight, <case>.fc.bias, <case>.loss [1],
  <case>.grad.fc.weight, <case>.grad.fc.bias

sequence_mask(len, max_len=7) against (arange(7) < len[:, None]).float(), at
batch sizes 2 and 5 (lengths 0, 7, 9 and -1 among them):

  mask.len.b<B> i32 [B], mask.y.b<B> [B, 7]

References are computed in float64 from the float32 weights and stored as float32.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
V, D, K, PAD = 11, 4, 3, 0


class EmbedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D, padding_idx=PAD)
        self.fc = nn.Linear(D, K)

    def forward(self, tok):
        return self.fc(self.emb(tok))


def tokens(b, t, gen):
    tok = torch.randint(0, V, (b, t), generator=gen, dtype=torch.int64)
    tok[:, -1] = PAD  # every sequence ends in padding
    return tok


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    net = EmbedNet()
    out = {}
    for name, p in net.state_dict().items():
        out[name] = p.float().clone()
    ref = EmbedNet().double()
    ref.load_state_dict({k: v.double() for k, v in out.items()})
    for t in (5, 8):
        for b in (1, 3):
            tok = tokens(b, t, gen)
            out[f"tok.T{t}.b{b}"] = tok.int()
            out[f"y.T{t}.b{b}"] = ref(tok).float()
    tok = tokens(4, 5, gen)
    target = torch.rand((4, 5, K), generator=gen, dtype=torch.float64) * 2 - 1
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad()
    loss = F.mse_loss(ref(tok), target)
    loss.backward()
    out["train.tok"] = tok.int()
    out["train.target"] = target.float()
    out["train.loss"] = loss.detach().reshape(1).float()
    for name, p in ref.named_parameters():
        out[f"grad.{name}"] = p.grad.float().clone()
    opt.step()
    for name, p in ref.named_parameters():
        out[f"step1.{name}"] = p.detach().float().clone()
    for case, b, smooth in (("ce", 4, 0.0), ("ce_smooth", 3, 0.1)):
        fc = nn.Linear(5, 4)
        x = torch.rand((b, 6, 5), generator=gen) * 2 - 1
        label = torch.randint(0, 4, (b, 6), generator=gen)
        label[torch.rand((b, 6), generator=gen) < 0.3] = -100
        label[0, 0] = -100
        out[f"{case}.x"] = x.float()
        out[f"{case}.label"] = label.int()
        out[f"{case}.fc.weight"] = fc.weight.detach().float().clone()
        out[f"{case}.fc.bias"] = fc.bias.detach().float().clone()
        fc = fc.double()
        y = fc(x.double())
        loss = F.cross_entropy(y.reshape(-1, 4), label.reshape(-1), label_smoothing=smooth)
        loss.backward()
        out[f"{case}.loss"] = loss.detach().reshape(1).float()
        out[f"{case}.grad.fc.weight"] = fc.weight.grad.float().clone()
        out[f"{case}.grad.fc.bias"] = fc.bias.grad.float().clone()
    for b, lens in ((2, [3, 0]), (5, [7, 9, -1, 1, 6])):
        ln = torch.tensor(lens, dtype=torch.int32)
        out[f"mask.len.b{b}"] = ln
        out[f"mask.y.b{b}"] = (torch.arange(7)[None, :] < ln[:, None].long()).float()
    write_safetensors(os.path.join(HERE, "embed_goldens.safetensors"), out, {"vocab": str(V), "pad": str(PAD)})


if __name__ == "__main__":
    main()
