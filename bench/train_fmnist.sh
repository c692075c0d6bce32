#!/bin/sh
# train_fmnist.sh -- seconds per Fashion-MNIST epoch, batch 64, dnnc
# (dnnrun train) against PyTorch (the same model, recipe and data
# standardisation), same thread count, alternating runs in one invocation;
# prints the median train time of each (test-set evaluation excluded), test
# accuracies and the ratio.  The models (-m):
#   lenet  LeNet-5 with Adam 1e-3: bench/lenet_adam.dnn, bench/torch_lenet.py
#   vit    the small ViT of examples/vit_fmnist.dnn (AdamW, warm-up, cosine):
#          bench/torch_vit.py (torchvision's VisionTransformer)
#
#   bench/train_fmnist.sh [-m lenet|vit] [-t THREADS] [-e EPOCHS] [-r ROUNDS] [-b BUILD_DIR] [-l LIMIT]
#
# Defaults: lenet, 1 thread, 1 epoch, 3 rounds, build dir ./build.  PYTHON
# picks the interpreter that has torch (default /usr/bin/python3, Debian's;
# vit needs torchvision too).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
model=lenet threads=1 epochs=1 rounds=3 build="$here/../build" limit=""
while getopts m:t:e:r:b:l: opt; do
    case $opt in
    m) model=$OPTARG ;;
    t) threads=$OPTARG ;; e) epochs=$OPTARG ;; r) rounds=$OPTARG ;; b) build=$OPTARG ;;
    l) limit="--limit $OPTARG" ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
python=${PYTHON:-/usr/bin/python3}
for f in "$build/dnnc" "$build/dnnrun"; do
    [ -x "$f" ] || { echo "train_fmnist.sh: $f missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
done
"$python" -c 'import torch' 2>/dev/null || { echo "train_fmnist.sh: $python has no torch (set PYTHON)" >&2; exit 1; }
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
case $model in
lenet) dnn="$here/lenet_adam.dnn" torch_script="$here/torch_lenet.py" title="LeNet-5, Adam 1e-3" ;;
vit) dnn="$here/../examples/vit_fmnist.dnn" torch_script="$here/torch_vit.py"
    title="ViT (patch 7, 4 layers, width 64), AdamW 2e-3 with warm-up and cosine" ;;
*) echo "train_fmnist.sh: -m lenet or -m vit, got '$model'" >&2; exit 2 ;;
esac
"$build/dnnc" "$dnn" -o "$work/model.so"
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "$title, Fashion-MNIST, batch 64, $threads thread(s), $epochs epoch(s) x $rounds round(s)"
: > "$work/dnnc.txt"
: > "$work/torch.txt"
r=1
while [ "$r" -le "$rounds" ]; do
    # shellcheck disable=SC2086
    "$build/dnnrun" train "$work/model.so" --epochs "$epochs" --batch 64 --seed "$r" --threads "$threads" \
        --acc-every 0 --save "$work/w.safetensors" $limit > "$work/dnnc.log"
    grep 'done: train time' "$work/dnnc.log" | sed 's/.*train time \([0-9.]*\) s.*test accuracy \([0-9.]*\)%.*/\1 \2/' >> "$work/dnnc.txt"
    # shellcheck disable=SC2086
    "$python" "$torch_script" train --threads "$threads" --epochs "$epochs" --batch 64 --seed "$r" $limit \
        > "$work/torch.log"
    sed -n 's/.*train time \([0-9.]*\) s.*test accuracy \([0-9.]*\)%.*/\1 \2/p' "$work/torch.log" >> "$work/torch.txt"
    echo "round $r: dnnc $(cut -d' ' -f1 "$work/dnnc.txt" | tail -n "$epochs" | tr '\n' ' ')s/epoch," \
        "pytorch $(cut -d' ' -f1 "$work/torch.txt" | tail -n "$epochs" | tr '\n' ' ')s/epoch"
    r=$((r + 1))
done
d=$(cut -d' ' -f1 "$work/dnnc.txt" | median)
t=$(cut -d' ' -f1 "$work/torch.txt" | median)
echo "median seconds per epoch: dnnc $d, pytorch $t; pytorch/dnnc = $(awk -v a="$t" -v b="$d" 'BEGIN { printf "%.2f", a / b }')x"
echo "test accuracy after the last epoch (last round): dnnc $(tail -n 1 "$work/dnnc.txt" | cut -d' ' -f2)%," \
    "pytorch $(tail -n 1 "$work/torch.txt" | cut -d' ' -f2)%"
