#!/usr/bin/env python3
"""torch_cnn.py -- the anchors of bench/run.sh for the lecture's CNNs:
PyTorch eager, torch.compile and ONNX Runtime on the same networks as
dnnc's examples (LeNet-5 as bench/lenet_adam.dnn, AlexNet, VGG-16 and
ResNet-18 as torchvision builds them, random weights and inputs).

  torch_cnn.py infer --model M --system S --threads T --batch B [--reps R] [--warmup W]
      S: eager (eval, no_grad), compile (torch.compile of the same), or ort
      (the module exported by torch.onnx.export, opset 17, run by
      onnxruntime's CPU provider with T intra-op threads); prints
      "infer batch B median M ms"
  torch_cnn.py train --model M --threads T --batch B [--reps R] [--warmup W]
      eager: one SGD step (momentum 0.9, cross-entropy) per call; prints
      "train batch B median M ms"
Every line ends with "peak_rss_kb K" (this process's maximum resident set).
Set OMP_NUM_THREADS to T as well (bench/run.sh does).
"""
import argparse
import os
import resource
import sys
import tempfile
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from torch_timing import median_ms  # noqa: E402


def build(name):
    """The model and the shape of one input item."""
    if name == "lenet":
        from make_goldens import LeNet
        return LeNet(), (1, 28, 28)
    import torchvision.models as tvm
    ctor = {"alexnet": tvm.alexnet, "vgg16": tvm.vgg16, "resnet18": tvm.resnet18}[name]
    return ctor(weights=None), (3, 224, 224)


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def ort_session(model, x, threads):
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, x, path, opset_version=17, input_names=["x"], output_names=["y"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def infer(args):
    model, item = build(args.model)
    model.eval()
    x = torch.randn(args.batch, *item)
    if args.system == "ort":
        sess = ort_session(model, x, args.threads)
        feed = {"x": x.numpy()}
        ms = median_ms(lambda: sess.run(None, feed), args.reps, args.warmup)
    else:
        fn = torch.compile(model) if args.system == "compile" else model
        with torch.no_grad():
            ms = median_ms(lambda: fn(x), args.reps, args.warmup)
    print(f"infer batch {args.batch} median {ms:.4f} ms peak_rss_kb {peak_rss_kb()}")


def train(args):
    model, item = build(args.model)
    model.train()
    x = torch.randn(args.batch, *item)
    classes = 10 if args.model == "lenet" else 1000
    y = torch.randint(0, classes, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    ms = median_ms(step, args.reps, args.warmup)
    print(f"train batch {args.batch} median {ms:.4f} ms peak_rss_kb {peak_rss_kb()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["infer", "train"])
    ap.add_argument("--model", choices=["lenet", "alexnet", "vgg16", "resnet18"], required=True)
    ap.add_argument("--system", choices=["eager", "compile", "ort"], default="eager")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    (infer if args.mode == "infer" else train)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
