#!/bin/sh
# compile_time.sh -- how long dnnc takes to build the CNN examples: with
# training and inference-only (--no-train), each from nothing (--no-cache),
# again from the kernel cache the first build filled, and after a small
# edit with that cache (a new head: the class count halved, as in transfer
# learning); prints a Markdown table, medians of R runs.
#
# usage: sh bench/compile_time.sh [-d BUILD] [-r R] [-j JOBS] [-m "MODELS"]
#   BUILD  the build folder with dnnc (default build)
#   R      runs per cell (default 3)
#   JOBS   dnnc --jobs (default: dnnc's own, one per core)
#   MODELS example names (default "lenet alexnet vgg16 resnet")
# The cache is a fresh folder under $TMPDIR, removed at the end; the
# machine's own ~/.cache/dnnc is not touched.
set -eu
build=build runs=3 jobs= models="lenet alexnet vgg16 resnet"
while getopts d:r:j:m: opt; do
    case $opt in
    d) build=$OPTARG ;;
    r) runs=$OPTARG ;;
    j) jobs=--jobs=$OPTARG ;;
    m) models=$OPTARG ;;
    *) echo "usage: sh bench/compile_time.sh [-d BUILD] [-r R] [-j JOBS] [-m MODELS]" >&2; exit 2 ;;
    esac
done
dnnc=$build/dnnc
[ -x "$dnnc" ] || { echo "compile_time.sh: no $dnnc (build first)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dnnc-compile-time.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DNNC_CACHE_DIR="$work/cache"

# seconds of one dnnc run (wall clock)
run_s() {
    s=$(date +%s.%N)
    "$dnnc" "$@" $jobs -o "$work/out.so" >/dev/null
    e=$(date +%s.%N)
    echo "$s $e" | awk '{ printf "%.2f\n", $2 - $1 }'
}

# the median of R runs of run_s "$@"; $1: "fresh" empties the cache before
# each run, "base" restores it to what the unedited model's build left
median() {
    mode=$1
    shift
    i=0
    : >"$work/times"
    while [ $i -lt "$runs" ]; do
        rm -rf "$DNNC_CACHE_DIR"
        [ "$mode" = base ] && cp -a "$work/base" "$DNNC_CACHE_DIR"
        run_s "$@" >>"$work/times"
        i=$((i + 1))
    done
    sort -n "$work/times" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

# the model with a new head: the class count W of "logits: f32[N, W]" and
# of the last layer's dense(W) (or dense(x, W)) halved
edited() {
    w=$(sed -n 's/.*logits: f32\[N, \([0-9]*\)\].*/\1/p' "$1" | head -n 1)
    h=$((w / 2))
    sed "s/logits: f32\[N, $w\]/logits: f32[N, $h]/; s/dense(\(x, \)\{0,1\}$w)/dense(\1$h)/" "$1"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
vec=AVX2; grep -q avx512f /proc/cpuinfo && vec=AVX-512
echo "CPU: $cpu ($vec), $(nproc) cores; $("$dnnc" --version)"
echo
echo "| model | training: fresh | cached | after an edit | inference: fresh | cached | after an edit |"
echo "|---|---|---|---|---|---|---|"
for m in $models; do
    src=examples/$m.dnn
    edited "$src" >"$work/$m-edited.dnn"
    row="| $m"
    for t in "" --no-train; do
        fresh=$(median fresh "$src" $t --no-cache)
        rm -rf "$DNNC_CACHE_DIR" "$work/base"
        "$dnnc" "$src" $t $jobs -o "$work/out.so" >/dev/null
        cp -a "$DNNC_CACHE_DIR" "$work/base"
        cached=$(median base "$src" $t)
        edit=$(median base "$work/$m-edited.dnn" $t)
        row="$row | $fresh s | $cached s | $edit s"
    done
    echo "$row |"
done
