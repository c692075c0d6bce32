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

A tiny encoder-decoder with attention, examples/seq2seq_attention.dnn in
small (its .dnn text travels in the metadata as "s2s_source"): bytes of a
vocabulary of 11, an embedding(11, 5) and a bidirectional GRU(4) encoder
over sources of S = 6 with their lengths (pack_padded_sequence), a GRU(8)
decoder over tgt_in [N, 4] started from the encoder's two final states side
by side, Luong general attention over the encoder outputs (padding masked),
tanh(combine([context; h])) and Linear(8, 11) logits; cross_entropy with
labels -100 past each target.  Forward at B = 1, 3, one SGD step at B = 4:

  s2s.<param>                                      initial weights
  s2s.b<B>.{src, src_len, tgt_in (i32), logits}    forward
  s2s.train.{src, src_len, tgt_in, label (i32), loss [1]},
  s2s.grad.<param>, s2s.step1.<param>              the step

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


S2S_SOURCE = """model s2s(src: i32[N, 6], src_len: i32[N], tgt_in: i32[N, 4]) -> (logits: f32[N, 4, 11]) {
  e = src |> src_emb: embedding(11, 5) |> encoder: gru(4, bidirectional=true, lengths=src_len, return_state=true)
  enc = e[0]
  h0 = e[1] |> reshape(-1, 1, 8)
  dec = tgt_in |> tgt_emb: embedding(11, 5) |> decoder: gru(8, h0=h0)
  ctx = att: attention(dec, enc, kind="general", mask=sequence_mask(src_len, max_len=6))
  logits = concat([ctx, dec], axis=2) |> combine: dense(8) |> tanh |> out: dense(11)
}

train s2s {
  label: i32[N, 4]
  loss = cross_entropy(logits, label)
  optimizer = sgd(lr=0.1, momentum=0.9)
}
"""
V, S, T = 11, 6, 4


class Seq2Seq(nn.Module):
    """S2S_SOURCE in torch: the attributes are the .dnn labels."""

    def __init__(self):
        super().__init__()
        self.src_emb = nn.Embedding(V, 5)
        self.encoder = nn.GRU(5, 4, batch_first=True, bidirectional=True)
        self.tgt_emb = nn.Embedding(V, 5)
        self.decoder = nn.GRU(5, 8, batch_first=True)
        self.att = nn.Linear(8, 8, bias=False)
        self.combine = nn.Linear(16, 8)
        self.out = nn.Linear(8, V)

    def forward(self, src, src_len, tgt_in):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.src_emb(src), src_len.long(), batch_first=True, enforce_sorted=False
        )
        enc, h_n = self.encoder(packed)
        enc, _ = nn.utils.rnn.pad_packed_sequence(enc, batch_first=True, total_length=S)
        h0 = h_n.transpose(0, 1).reshape(-1, 1, 8).transpose(0, 1).contiguous()  # [1, N, 8]
        dec, _ = self.decoder(self.tgt_emb(tgt_in), h0)
        mask = (torch.arange(S)[None, :] < src_len[:, None].long()).to(dec.dtype)
        ctx, _ = attend(dec @ self.att(enc).transpose(1, 2), enc, mask)
        return self.out(torch.tanh(self.combine(torch.cat([ctx, dec], dim=2))))


def s2s_batch(b, gen):
    """Sources of 1..S bytes in 3..10 padded with 0; targets of 1..3 bytes: BOS (1) first in
    tgt_in, EOS (2) last in the label, then -100."""
    src_len = torch.randint(1, S + 1, (b,), generator=gen)
    src_len[0] = S
    src = torch.randint(3, V, (b, S), generator=gen)
    src[torch.arange(S)[None, :] >= src_len[:, None]] = 0
    tgt_in = torch.zeros((b, T), dtype=torch.int64)
    label = torch.full((b, T), -100, dtype=torch.int64)
    for i in range(b):
        n = int(torch.randint(1, T, (1,), generator=gen))
        y = torch.randint(3, V, (n,), generator=gen)
        tgt_in[i, 0] = 1
        tgt_in[i, 1 : n + 1] = y
        label[i, :n] = y
        label[i, n] = 2
    return src, src_len, tgt_in, label


def seq2seq(out, gen):
    net = Seq2Seq()
    init = {n: p.detach().float().clone() for n, p in net.named_parameters()}
    for n, p in init.items():
        out[f"s2s.{n}"] = p
    ref = Seq2Seq().double()
    ref.load_state_dict({n: p.double() for n, p in init.items()})
    for b in (1, 3):
        src, src_len, tgt_in, _ = s2s_batch(b, gen)
        out[f"s2s.b{b}.src"], out[f"s2s.b{b}.src_len"], out[f"s2s.b{b}.tgt_in"] = src.int(), src_len.int(), tgt_in.int()
        out[f"s2s.b{b}.logits"] = ref(src, src_len, tgt_in).detach().float()
    src, src_len, tgt_in, label = s2s_batch(4, gen)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad()
    loss = F.cross_entropy(ref(src, src_len, tgt_in).reshape(-1, V), label.reshape(-1))
    loss.backward()
    for n, t in (("src", src), ("src_len", src_len), ("tgt_in", tgt_in), ("label", label)):
        out[f"s2s.train.{n}"] = t.int()
    out["s2s.train.loss"] = loss.detach().reshape(1).float()
    for n, p in ref.named_parameters():
        out[f"s2s.grad.{n}"] = p.grad.float().clone()
    opt.step()
    for n, p in ref.named_parameters():
        out[f"s2s.step1.{n}"] = p.detach().float().clone()


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
    seq2seq(out, gen)
    write_safetensors(
        os.path.join(HERE, "attention_goldens.safetensors"), out, {"mask_bias": str(MASK_BIAS), "s2s_source": S2S_SOURCE}
    )


if __name__ == "__main__":
    main()
