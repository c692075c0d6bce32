#!/bin/sh
# ab.sh -- A/B of the GEMM kernels on one model: compiles MODEL (default
# examples/lenet.dnn) twice, with --direct-kernels (direct loops) and
# without, builds step_bench.c, and runs both alternately; prints ms per
# train step (batch 64) and per infer call (batch 1, 64) for each.
#
#   bench/kernels/ab.sh [-b BUILD_DIR] [-t THREADS] [-r ROUNDS] [MODEL.dnn]
#
# The machines are noisy (10-25% between runs): compare the two lines of one round.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build" threads=1 rounds=2
while getopts b:t:r: opt; do
    case $opt in
    b) build=$OPTARG ;; t) threads=$OPTARG ;; r) rounds=$OPTARG ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
model=${1:-"$here/../../examples/lenet.dnn"}
work=$(mktemp -d /tmp/dnnc-ab-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -I "$here/../../runtime/include" "$here/step_bench.c" -o "$work/step_bench" -ldl
"$build/dnnc" "$model" -o "$work/direct.so" --direct-kernels
"$build/dnnc" "$model" -o "$work/gemm.so"
r=1
while [ "$r" -le "$rounds" ]; do
    for v in direct gemm; do
        echo "round $r, $v, $threads thread(s):"
        "$work/step_bench" "$work/$v.so" "$threads" 200 | sed 's/^/  /'
    done
    r=$((r + 1))
done
