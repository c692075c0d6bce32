#!/bin/sh
# googlenet_vs_lenet.sh -- trains examples/googlenet_fmnist.dnn (GoogLeNet
# at a quarter width, images resized to 64x64 inside the step) and
# examples/lenet.dnn on Fashion-MNIST for the same number of epochs with
# dnnrun, each with its own compiled recipe, and prints each one's test
# accuracy per epoch and the difference after the last.  Not a timing
# benchmark: the training times are printed as dnnrun reports them.
#
#   bench/googlenet_vs_lenet.sh [-e EPOCHS] [-t THREADS] [-b BUILD_DIR] [-d DATA_DIR]
#
# Defaults: 2 epochs (the epochs both recipes' cosine schedules are set
# for), 1 thread, ./build, dnnrun's default data directory.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
epochs=2 threads=1 build="$here/../build" data=fashion-mnist
while getopts e:t:b:d: opt; do
    case $opt in
    e) epochs=$OPTARG ;; t) threads=$OPTARG ;; b) build=$OPTARG ;; d) data="fashion-mnist:$OPTARG" ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
done
[ -x "$build/dnnc" ] || { echo "googlenet_vs_lenet.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
work=$(mktemp -d /tmp/dnnc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
for m in googlenet_fmnist lenet; do
    "$build/dnnc" "$here/../examples/$m.dnn" -o "$work/$m.so"
    "$build/dnnrun" train "$work/$m.so" --data "$data" --epochs "$epochs" --threads "$threads" \
        --save "$work/$m.w" > "$work/$m.log"
    grep 'done:' "$work/$m.log" | sed "s|^|$m |"
done
acc() { grep 'done:' "$work/$1.log" | tail -1 | sed 's|.*test accuracy \([0-9.]*\)%.*|\1|'; }
g=$(acc googlenet_fmnist) l=$(acc lenet)
awk -v g="$g" -v l="$l" -v e="$epochs" 'BEGIN {
    printf "after %d epoch(s): googlenet_fmnist %.2f%%, lenet %.2f%%: GoogLeNet %s by %.2f points\n",
           e, g, l, (g > l ? "ahead" : "behind"), (g > l ? g - l : l - g) }'
