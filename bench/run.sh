#!/bin/sh
# run.sh -- the CNN comparison in one command: dnnc against PyTorch eager,
# torch.compile and ONNX Runtime on the same machine in one invocation
# (systems alternating within each round, medians over rounds), then
# sgemm against OpenBLAS (bench/gemm.sh) and compile times
# (bench/compile_time.sh).  Prints Markdown tables with ratios.
#
# usage: sh bench/run.sh [-m "MODELS"] [-B "BATCHES"] [-t "THREADS"] [-r ROUNDS] [-n REPS]
#                        [-T "TRAIN_BATCHES"] [-s "GEMM_SIZES"] [-b BUILD] [-e ENV] [-p "PARTS"] [-q]
#   MODELS   lenet alexnet vgg16 resnet18 (default all four)
#   BATCHES  inference batches (default "1 8");  THREADS (default "1 2")
#   ROUNDS   rounds per cell (default 3);  REPS timed calls per round (default 10)
#   TRAIN_BATCHES  ResNet-18 training-step batches (default "8 32")
#   GEMM_SIZES  (default "256 512 1024 2048 4096")
#   ENV      the bench-only virtual environment with torch, torchvision,
#            onnx, onnxscript and onnxruntime from PyPI (default $TMPDIR/dnnc-bench-env:
#            created with /usr/bin/python3 -m venv and pip when missing;
#            never needed by the tests)
#   PARTS    which tables: infer train gemm compile (default all four)
#   -q       quick: 1 round, 3 reps, batch 1 and 1 thread only
# Peak memory: the resident set of each process (dnnc: bench/infer_bench.c
# under /usr/bin/time; PyTorch and ONNX Runtime: their own getrusage), and
# dnnc's arena bytes as --emit=plan states them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
models="lenet alexnet vgg16 resnet18" batches="1 8" threads="1 2" rounds=3 reps=10
train_batches="8 32" sizes="256 512 1024 2048 4096" build="$here/../build" env="${TMPDIR:-/tmp}/dnnc-bench-env"
parts="infer train gemm compile"
while getopts m:B:t:r:n:T:s:b:e:p:q opt; do
    case $opt in
    m) models=$OPTARG ;; B) batches=$OPTARG ;; t) threads=$OPTARG ;; r) rounds=$OPTARG ;; n) reps=$OPTARG ;;
    T) train_batches=$OPTARG ;; s) sizes=$OPTARG ;; b) build=$OPTARG ;; e) env=$OPTARG ;; p) parts=$OPTARG ;;
    q) rounds=1 reps=3 batches=1 threads=1 train_batches=8 sizes="256 1024" ;;
    *) sed -n '2,23p' "$0"; exit 2 ;;
    esac
done
for f in "$build/dnnc"; do [ -x "$f" ] || { echo "run.sh: no $f (build first)" >&2; exit 1; }; done
py=$env/bin/python
if ! "$py" -c 'import torch, torchvision, onnx, onnxscript, onnxruntime' 2>/dev/null; then
    echo "run.sh: installing torch, torchvision, onnx, onnxscript, onnxruntime into $env (PyPI; bench only)" >&2
    /usr/bin/python3 -m venv "$env"
    "$env/bin/pip" install -q torch torchvision onnx onnxscript onnxruntime numpy >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/dnnc-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
${CC:-cc} -std=gnu11 -O2 -I"$here/../runtime/include" "$here/infer_bench.c" -o "$work/infer_bench" -ldl
${CC:-cc} -std=gnu11 -O2 -I"$here/../runtime/include" "$here/seq_bench.c" -o "$work/seq_bench" -ldl

source_of() {
    case $1 in
    lenet) echo "$here/lenet_adam.dnn" ;; resnet18) echo "$here/../examples/resnet.dnn" ;;
    *) echo "$here/../examples/$1.dnn" ;;
    esac
}
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == 0) print "-"; else printf "%.2f", b / a }'; }

vec=AVX2
grep -q avx512f /proc/cpuinfo && vec=AVX-512
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') ($vec), $(nproc) cores;" \
    "$("$build/dnnc" --version); $("$py" -c 'import torch, onnxruntime; print("PyTorch", torch.__version__, "/ ONNX Runtime", onnxruntime.__version__)')"
want() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
echo "rounds $rounds, $reps timed calls each; times are medians in ms; x = that system's time / dnnc's (> 1: dnnc faster)"
if want infer; then
    echo
    echo "| model | batch | threads | dnnc | eager | x | torch.compile | x | ONNX Runtime | x | dnnc arena MB / RSS MB | eager RSS MB |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for m in $models; do
        "$build/dnnc" "$(source_of "$m")" --no-train -o "$work/$m.so" >/dev/null
        # "arena: A*N + B + W*threads bytes" of the inference plan
        plan=$("$build/dnnc" "$(source_of "$m")" --no-train --emit=plan 2>/dev/null |
            sed -n 's/^ *arena: \([0-9]*\)\*N + \([0-9]*\)\( + \([0-9]*\)\*threads\)\{0,1\} bytes.*/\1 \2 \4/p' | head -n 1)
        for b in $batches; do
            for t in $threads; do
                arena=$(echo "$plan" | awk -v n="$b" -v t="$t" '{ printf "%.1f", ($1 * n + $2 + ($3 == "" ? 0 : $3) * t) / 1048576 }')
                for s in dnnc eager compile ort; do : >"$work/$s"; done
                : >"$work/rss_dnnc"
                : >"$work/rss_eager"
                r=0
                while [ $r -lt "$rounds" ]; do
                    /usr/bin/time -f "%M" -o "$work/rss" env DNRT_THREADS="$t" \
                        "$work/infer_bench" "$work/$m.so" "$b" "$t" "$reps" 2 >"$work/out"
                    sed 's/.*median \([0-9.]*\) ms.*/\1/' "$work/out" >>"$work/dnnc"
                    tail -n 1 "$work/rss" >>"$work/rss_dnnc"
                    for s in eager compile ort; do
                        OMP_NUM_THREADS=$t "$py" "$here/torch_cnn.py" infer --model "$m" --system "$s" --threads "$t" \
                            --batch "$b" --reps "$reps" >"$work/out" 2>"$work/err" || true
                        sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' "$work/out" >>"$work/$s"
                        [ "$s" = eager ] && sed -n 's/.*peak_rss_kb \([0-9]*\).*/\1/p' "$work/out" >>"$work/rss_eager"
                    done
                    r=$((r + 1))
                done
                d=$(median "$work/dnnc") e=$(median "$work/eager") c=$(median "$work/compile") o=$(median "$work/ort")
                rd=$(median "$work/rss_dnnc" | awk '{ printf "%.0f", $1 / 1024 }')
                re=$(median "$work/rss_eager" | awk '{ if ($1 == "-") print "-"; else printf "%.0f", $1 / 1024 }')
                echo "| $m | $b | $t | $d | $e | $(ratio "$d" "$e") | $c | $(ratio "$d" "$c") | $o | $(ratio "$d" "$o") | ${arena:-?} / $rd | $re |"
            done
        done
    done

fi
if want train; then
    echo
    echo "ResNet-18 training step (SGD, cross-entropy), 1 thread:"
    echo
    echo "| batch | dnnc | PyTorch eager | x |"
    echo "|---|---|---|---|"
    "$build/dnnc" "$here/../examples/resnet.dnn" -o "$work/resnet_train.so" >/dev/null
    for b in $train_batches; do
        : >"$work/dt"
        : >"$work/et"
        r=0
        while [ $r -lt "$rounds" ]; do
            DNRT_THREADS=1 "$work/seq_bench" "$work/resnet_train.so" train "$b" 1 3 |
                sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' >>"$work/dt"
            OMP_NUM_THREADS=1 "$py" "$here/torch_cnn.py" train --model resnet18 --threads 1 --batch "$b" --reps 3 \
                --warmup 1 | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' >>"$work/et"
            r=$((r + 1))
        done
        d=$(median "$work/dt") e=$(median "$work/et")
        echo "| $b | $d | $e | $(ratio "$d" "$e") |"
    done

fi
if want gemm; then
    echo
    PYTHON=$py sh "$here/gemm.sh" -s "$sizes" -n 5 -b "$build"
fi
if want compile; then
    echo
    sh "$here/compile_time.sh" -r 1 -d "$build"
fi
