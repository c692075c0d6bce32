#!/usr/bin/env python3
"""torch_transformer.py -- the PyTorch and ONNX Runtime side of
bench/infer_model.sh -m vit_tiny and -m encoder6:

  vit_tiny  torchvision's VisionTransformer(224, 16, 12, 3, 192, 768), the
            model of examples/vit_tiny.dnn, on 3x224x224 images
  encoder6  nn.TransformerEncoder(nn.TransformerEncoderLayer(512, 8, 2048,
            batch_first=True), 6), the model of bench/encoder6.dnn, on
            [B, 128, 512]

  torch_transformer.py infer --model M --threads T --batch B [--reps R] [--warmup W] [--ort]
      random weights and inputs; PyTorch in eval mode under no_grad, or with
      --ort the same module exported by torch.onnx.export (opset 17) and run
      by onnxruntime (needs a Python with onnxruntime: the bench-only
      environment of bench/README.md); prints "infer batch B median M ms".
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch
from torch import nn

from torch_timing import time_infer


def build(name):
    if name == "vit_tiny":
        from torchvision.models import VisionTransformer
        return VisionTransformer(224, 16, 12, 3, 192, 768), (3, 224, 224)
    layer = nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True)
    return nn.TransformerEncoder(layer, 6, enable_nested_tensor=False), (128, 512)


def time_ort(model, x, reps, warmup, threads):
    import onnxruntime as ort
    model.eval()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        # with gradients on, so nn.TransformerEncoderLayer takes its composite
        # path, which exports (its fused inference kernel has no ONNX form)
        with warnings.catch_warnings():  # the tracer's notes on asserts it treats as constants
            warnings.simplefilter("ignore")
            torch.onnx.export(model, x, path, opset_version=17, input_names=["x"], output_names=["y"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    print(f"infer batch {x.shape[0]} median {1e3 * statistics.median(times):.4f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["infer"])
    ap.add_argument("--model", choices=["vit_tiny", "encoder6"], required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ort", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, shape = build(args.model)
    x = torch.randn(args.batch, *shape)
    if args.ort:
        time_ort(model, x, args.reps, args.warmup, args.threads)
    else:
        time_infer(model, x, args.reps, args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
