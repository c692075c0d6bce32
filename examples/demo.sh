#!/bin/sh
# demo.sh BUILD_DIR -- the README's first command ends here:
# compile LeNet-5, train it for two epochs on Fashion-MNIST from C (dnnrun),
# then classify test images with the example program linked against the
# generated library and the weights just trained.
set -e
B=${1:-build}
OUT="$B/demo"
mkdir -p "$OUT"
echo "== dnnc examples/lenet.dnn -o $OUT/lenet.so"
"$B/dnnc" examples/lenet.dnn -o "$OUT/lenet.so"
echo "== dnnrun train (2 epochs, batch 64)"
"$B/dnnrun" train "$OUT/lenet.so" --data fashion-mnist --epochs 2 --batch 64 --seed 1 --save "$OUT/lenet.safetensors"
echo "== examples/classify (links $B/examples/lenet.so, the same model)"
"$B/examples/classify" "$OUT/lenet.safetensors" 16
