"""torch_char_lstm.py -- the character LSTM language model of
examples/char_lstm.dnn in PyTorch, timed the way bench/seq_bench.c times
the dnnc libraries (what bench/lstm_lm.sh compares):

  train: median ms of one training step (forward, cross-entropy over every
         position, backward, Adam) at --batch on random bytes, printed as
         "train batch B median M ms tokens/s R"
  step:  median ms of one generation step at batch 1 (one token in, the
         recurrent state carried, no_grad), printed as
         "infer batch 1 median M ms"
  fit:   the recipe of `dnnrun train --data text:FILES` on the same files:
         the last 10% of each file held out, windows of seq+1 bytes at
         random offsets, Adam 2e-3, batch 32, for --steps steps or
         --minutes minutes, whichever ends first; prints the held-out
         cross-entropy (consecutive windows) in bits per character
"""
import argparse
import math
import time

import torch
from torch import nn

from torch_timing import median_ms


class CharLSTM(nn.Module):
    def __init__(self, vocab, embed, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens, state=None):
        y, state = self.lstm(self.embed(tokens), state)
        return self.head(y), state


def fit(model, a):
    train, held = [], []
    for path in a.files.split(","):
        data = open(path, "rb").read()
        cut = len(data) - len(data) // 10
        train.append(data[:cut])
        held.append(data[cut:])
    train = torch.tensor(list(b"".join(train)), dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    t0 = time.perf_counter()
    steps = 0
    while steps < a.steps and time.perf_counter() - t0 < 60 * a.minutes:
        at = torch.randint(0, len(train) - a.seq - 1, (a.batch,))
        w = torch.stack([train[i : i + a.seq + 1] for i in at.tolist()])
        opt.zero_grad()
        logits, _ = model(w[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, 256), w[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        steps += 1
    spent = time.perf_counter() - t0
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for h in held:
            h = torch.tensor(list(h), dtype=torch.long)
            for i in range(0, len(h) - a.seq - 1, a.seq):
                w = h[i : i + a.seq + 1].unsqueeze(0)
                logits, _ = model(w[:, :-1])
                total += nn.functional.cross_entropy(logits[0], w[0, 1:], reduction="sum").item()
                count += a.seq
    print(f"fit steps {steps} seconds {spent:.0f} held-out bits/char {total / count / math.log(2):.4f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "step", "fit"])
    ap.add_argument("--files", default="", help="fit: comma-separated text files")
    ap.add_argument("--steps", type=int, default=10**9)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=50)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = CharLSTM(256, a.embed, a.hidden, a.layers)
    if a.what == "fit":
        fit(model, a)
    elif a.what == "train":
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        x = torch.randint(0, 256, (a.batch, a.seq))
        y = torch.randint(0, 256, (a.batch, a.seq))

        def step():
            opt.zero_grad()
            logits, _ = model(x)
            loss = nn.functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
            loss.backward()
            opt.step()

        ms = median_ms(step, a.reps, max(1, a.reps // 10))
        print(f"train batch {a.batch} median {ms:.3f} ms tokens/s {a.batch * a.seq / (ms * 1e-3):.0f}")
    else:
        model.eval()
        tok = torch.randint(0, 256, (1, 1))
        state = [None]

        def step():
            with torch.no_grad():
                _, state[0] = model(tok, state[0])

        ms = median_ms(step, a.reps, max(1, a.reps // 10))
        print(f"infer batch 1 median {ms:.4f} ms")


if __name__ == "__main__":
    main()
