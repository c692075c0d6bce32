#!/bin/sh
# train_lenet.sh -- seconds per Fashion-MNIST epoch for LeNet-5, batch 64,
# Adam 1e-3: dnnc (dnnrun train on bench/lenet_adam.dnn) against PyTorch
# (bench/torch_lenet.py, same model, same data standardisation), same thread
# count, alternating runs in one invocation; prints the median train time of
# each (test-set evaluation excluded), test accuracies and the ratio.
#
#   bench/train_lenet.sh [-t THREADS] [-e EPOCHS] [-r ROUNDS] [-b BUILD_DIR] [-l LIMIT]
#
# Defaults: 1 thread, 1 epoch, 3 rounds, build dir ./build.  PYTHON picks the
# interpreter that has torch (default /usr/bin/python3, Debian's).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
threads=1 epochs=1 rounds=3 build="$here/../build" limit=""
while getopts t:e:r:b:l: opt; do
    case $opt in
    t) threads=$OPTARG ;; e) epochs=$OPTARG ;; r) rounds=$OPTARG ;; b) build=$OPTARG ;;
    l) limit="--limit $OPTARG" ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
    esac
done
python=${PYTHON:-/usr/bin/python3}
for f in "$build/dnnc" "$build/dnnrun"; do
    [ -x "$f" ] || { echo "train_lenet.sh: $f missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
done
"$python" -c 'import torch' 2>/dev/null || { echo "train_lenet.sh: $python has no torch (set PYTHON)" >&2; exit 1; }
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/dnnc" "$here/lenet_adam.dnn" -o "$work/lenet.so"
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "LeNet-5, Fashion-MNIST, batch 64, Adam 1e-3, $threads thread(s), $epochs epoch(s) x $rounds round(s)"
: > "$work/dnnc.txt"
: > "$work/torch.txt"
r=1
while [ "$r" -le "$rounds" ]; do
    # shellcheck disable=SC2086
    "$build/dnnrun" train "$work/lenet.so" --epochs "$epochs" --batch 64 --seed "$r" --threads "$threads" \
        --acc-every 0 --save "$work/w.safetensors" $limit > "$work/dnnc.log"
    grep 'done: train time' "$work/dnnc.log" | sed 's/.*train time \([0-9.]*\) s.*test accuracy \([0-9.]*\)%.*/\1 \2/' >> "$work/dnnc.txt"
    # shellcheck disable=SC2086
    "$python" "$here/torch_lenet.py" train --threads "$threads" --epochs "$epochs" --batch 64 --seed "$r" $limit \
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
