#!/usr/bin/env python3
"""torch_kv_decode.py -- the PyTorch side of bench/kv_decode.sh: the model
of bench/kv_step.dnn (4 causal pre-norm layers as nn.TransformerEncoderLayer(64,
4, 256, gelu, norm_first) holds them, a final nn.LayerNorm, a tied byte
embedding of 64, sinusoidal positions) decoding greedily with its own KV
cache, past_key_values style: preallocated [1, S, 64] key and value tensors
per layer, this step's row written at pos, attention over rows 0..pos.

  torch_kv_decode.py --threads T --tokens 512 [--rounds 5]
      prints "decode T tokens median M ms (R tokens/s)" (eval, no_grad,
      after one warm-up round)
"""
import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

D, H, FF, LAYERS, V = 64, 4, 256, 4, 256


class Step(nn.Module):
    def __init__(self, bound):
        super().__init__()
        self.embed = nn.Parameter(torch.randn(V, D) * 0.125)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(D, H, FF, 0.0, activation="gelu", norm_first=True, batch_first=True)
            for _ in range(LAYERS))
        self.norm = nn.LayerNorm(D)
        pos = torch.arange(bound, dtype=torch.float64)[:, None]
        w = torch.exp(torch.arange(0, D, 2, dtype=torch.float64) * (-math.log(10000.0) / D))
        pe = torch.zeros(bound, D, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * w), torch.cos(pos * w)
        self.register_buffer("pe", pe.float())
        self.k = [torch.zeros(1, bound, D) for _ in range(LAYERS)]
        self.v = [torch.zeros(1, bound, D) for _ in range(LAYERS)]

    def forward(self, tok, pos):
        x = F.embedding(tok, self.embed) * 8 + self.pe[pos]  # [1, 1, D]
        for i, layer in enumerate(self.layers):
            at = layer.self_attn
            q, k, v = F.linear(layer.norm1(x), at.in_proj_weight, at.in_proj_bias).chunk(3, dim=-1)
            self.k[i][:, pos] = k[:, 0]
            self.v[i][:, pos] = v[:, 0]
            kk = self.k[i][:, :pos + 1].view(1, pos + 1, H, D // H).transpose(1, 2)
            vv = self.v[i][:, :pos + 1].view(1, pos + 1, H, D // H).transpose(1, 2)
            qh = q.view(1, 1, H, D // H).transpose(1, 2)
            w = torch.softmax(qh @ kk.transpose(-1, -2) / math.sqrt(D // H), dim=-1)
            o = (w @ vv).transpose(1, 2).reshape(1, 1, D)
            x = x + at.out_proj(o)
            x = x + layer.linear2(F.gelu(layer.linear1(layer.norm2(x))))
        return F.linear(self.norm(x), self.embed)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = Step(args.tokens).eval()
    times = []
    with torch.no_grad():
        for r in range(-1, args.rounds):
            tok = torch.tensor([[1]])
            t0 = time.perf_counter()
            for pos in range(args.tokens):
                tok = model(tok, pos).argmax(-1)
            if r >= 0:
                times.append(time.perf_counter() - t0)
    ms = 1e3 * statistics.median(times)
    print(f"decode {args.tokens} tokens median {ms:.3f} ms ({args.tokens / (ms * 1e-3):.0f} tokens/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
