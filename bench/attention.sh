#!/bin/sh
# attention.sh -- attention alone (heads 8, head dim 64 unless -H/-d), at
# each sequence length of -T: dnnc with the tile-attention pass (the
# flash_attention kernels), dnnc with -fno-tile-attention (matmul, softmax,
# matmul, the [T, T] scores in the arena) and PyTorch
# (bench/torch_attention.py), forward and forward+backward, same threads,
# one after another per length; prints medians, arena bytes and ratios.
#
#   bench/attention.sh [-T "1024 4096"] [-t THREADS] [-n REPS] [-B BATCH] [-H HEADS] [-d DIM] [-b BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lengths="1024 4096" threads=1 reps=5 batch=1 heads=8 dim=64 build="$here/../build"
while getopts T:t:n:B:H:d:b: opt; do
    case $opt in
    T) lengths=$OPTARG ;; t) threads=$OPTARG ;; n) reps=$OPTARG ;; B) batch=$OPTARG ;; H) heads=$OPTARG ;;
    d) dim=$OPTARG ;; b) build=$OPTARG ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
    esac
done
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/dnnc" ] || { echo "attention.sh: $build/dnnc missing: build the project first (-b BUILD_DIR)" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "attention.sh: $python has no torch (set PYTHON)" >&2; exit 1; }
work=$(mktemp -d /tmp/dnnc-attn-XXXXXX)
trap 'rm -rf "$work"' EXIT
${CC:-cc} -std=gnu11 -O2 -I"$here/../runtime/include" "$here/attention_bench.c" -o "$work/bench" -ldl
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads DNRT_THREADS=$threads
field() { awk -v k="$1" '$1 == k { print $2 }'; }
arena() { awk -v k="$1" '$1 == k { print $5 }'; }
echo "attention, batch $batch, $heads heads, head dim $dim, $threads thread(s), median of $reps calls; $(uname -m)," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for T in $lengths; do
    s="f32[N, $heads, $T, $dim]"
    cat >"$work/attn.dnn" <<DNN
model attn(q: $s, k: $s, v: $s) -> (y: $s) {
  param wq: f32[$heads, $T, $dim] = zeros
  param wk: f32[$heads, $T, $dim] = zeros
  param wv: f32[$heads, $T, $dim] = zeros
  y = scaled_dot_product_attention(q + wq, k + wk, v + wv)
}
train attn {
  t: $s
  loss = mse(y, t)
  optimizer = sgd(lr=0.1)
}
DNN
    "$build/dnnc" "$work/attn.dnn" -o "$work/tiled.so"
    "$build/dnnc" "$work/attn.dnn" -fno-tile-attention -o "$work/untiled.so"
    "$work/bench" "$work/tiled.so" "$batch" "$threads" "$reps" >"$work/tiled.txt"
    "$work/bench" "$work/untiled.so" "$batch" "$threads" "$reps" >"$work/untiled.txt"
    "$python" "$here/torch_attention.py" "$T" --batch "$batch" --heads "$heads" --dim "$dim" --reps "$reps" \
        --threads "$threads" >"$work/torch.txt"
    echo "T = $T ($(head -1 "$work/torch.txt"))"
    for pass in forward forward+backward; do
        a=$(field "$pass" <"$work/tiled.txt") u=$(field "$pass" <"$work/untiled.txt") p=$(field "$pass" <"$work/torch.txt")
        am=$(arena "$pass" <"$work/tiled.txt") um=$(arena "$pass" <"$work/untiled.txt")
        echo "  $pass: tiled $a ms, untiled $u ms, PyTorch $p ms;" \
            "untiled/tiled $(echo "$u $a" | awk '{ printf "%.2f", $1 / $2 }')x," \
            "PyTorch/tiled $(echo "$p $a" | awk '{ printf "%.2f", $1 / $2 }')x;" \
            "arena tiled $am B, untiled $um B ($(echo "$um $am" | awk '{ printf "%.1f", $1 / $2 }')x smaller)"
    done
done
