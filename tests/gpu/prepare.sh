#!/bin/sh
# tests/gpu/prepare.sh -- builds, on a development machine, everything
# tests/gpu/run.sh needs on a GPU machine that has neither dnnc nor LLVM.
#
# usage: sh tests/gpu/prepare.sh DNNC_BIN OUT_DIR [TARGET]
#
# TARGET: the dnnc target of the libraries to test (default cuda; opencl and
# cpu work the same way).  OUT_DIR receives:
#   check                       tests/gpu/check.c, built with $CC (default cc)
#                               and $CHECK_CFLAGS
#   NAME.so                     each case's model, dnnc --target=TARGET
#   NAME.inputs.safetensors     its inputs and expected outputs (and training
#                               losses), recorded from the CPU build of the
#                               same model (check --record), which stays in
#                               OUT_DIR/ref/ (not needed on the GPU machine)
#   NAME.weights.safetensors    the golden models' PyTorch weights
#   cases.txt                   one line per case, in run.sh's format
#   run.sh                      tests/gpu/run.sh, to run there
# Environment: $CASES, a space-separated subset of the case names below (the
# default is all of them); $DNNC_FLAGS, extra dnnc flags for TARGET (such as
# --gpu-arch=sm_90); BENCH=1 adds the ResNet-18 benchmark cases (minutes to
# record on a CPU) and copies bench/gpu_torch_resnet.py, which run.sh runs
# where PyTorch with CUDA is installed.  The dropout and augmentation cases
# train on the recorded losses, so they pass only when the GPU's masks and
# crops are the CPU's.  Exit status: 0, or 1 when anything failed (named).
dnnc=$1
out=$2
target=${3:-cuda}
if [ -z "$dnnc" ] || [ -z "$out" ]; then
    echo "usage: sh $0 DNNC_BIN OUT_DIR [TARGET]" >&2
    exit 2
fi
case $dnnc in /*) ;; *) dnnc=$(pwd)/$dnnc ;; esac
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out/ref" || exit 1
out=$(cd "$out" && pwd)

# name  model (in the source tree)  batch  weights (or -)  training steps  check flags
all_cases='
mlp          examples/mlp.dnn            8 -                               3 -
lenet        examples/lenet.dnn          8 -                               3 -
mlp_golden   tests/golden/mlp_sgd.dnn    7 tests/golden/mlp_weights        3 -
mlp_adam     tests/golden/mlp_adam.dnn   7 tests/golden/mlp_weights        3 -
lenet_golden tests/golden/lenet_sgd.dnn  7 tests/golden/lenet_weights      3 -
lenet_adam   tests/golden/lenet_adam.dnn 7 tests/golden/lenet_weights      3 -
resnet_tiny  tests/golden/resnet_tiny.dnn 5 tests/golden/resnet_tiny_weights 2 --atol=1e-3,--rtol=1e-3
dropout      tests/gpu_ops/random_dropout.dnn 3 -                      3 -
augment      tests/gpu_ops/random_flip_crop.dnn 3 -                    3 -
resize_crop  tests/gpu_ops/random_resized_crop.dnn 3 -                 3 -
'''
# With BENCH=1 (tests/gpu/run.sh then times them): ResNet-18 at batch 1
# (inference) and 64 (inference and a training step), the issue's benchmark.
bench_cases='
resnet18_b1  examples/resnet.dnn         1 -                               0 --bench=20,--atol=1e-3,--rtol=1e-3
resnet18_b64 examples/resnet.dnn         64 -                              1 --bench=10,--atol=1e-3,--rtol=1e-3
'''
[ "$BENCH" = 1 ] && all_cases="$all_cases$bench_cases"

cc=${CC:-cc}
# shellcheck disable=SC2086 # CHECK_CFLAGS is a list of flags
if ! $cc -O2 $CHECK_CFLAGS "$src/tests/gpu/check.c" -ldl -lm -o "$out/check"; then
    echo "prepare: cannot build $src/tests/gpu/check.c with $cc" >&2
    exit 1
fi

: >"$out/cases.txt"
cp "$src/tests/gpu/run.sh" "$out/run.sh" || exit 1
if [ "$BENCH" = 1 ]; then
    cp "$src/bench/gpu_torch_resnet.py" "$src/tests/golden/make_goldens.py" "$out/" || exit 1
fi
failed=0
echo "$all_cases" | while read -r name model batch weights steps flags; do
    [ -n "$name" ] || continue
    if [ -n "$CASES" ]; then
        case " $CASES " in *" $name "*) ;; *) continue ;; esac
    fi
    echo "prepare: $name ($model, --target=$target)"
    if ! "$dnnc" "$src/$model" -o "$out/ref/$name.so" --target=cpu >"$out/ref/$name.log" 2>&1; then
        echo "prepare: $name: dnnc --target=cpu failed:" >&2
        cat "$out/ref/$name.log" >&2
        exit 1
    fi
    # shellcheck disable=SC2086 # DNNC_FLAGS is a list of flags
    if ! "$dnnc" "$src/$model" -o "$out/$name.so" --target="$target" $DNNC_FLAGS >"$out/ref/$name.target.log" 2>&1; then
        echo "prepare: $name: dnnc --target=$target failed:" >&2
        cat "$out/ref/$name.target.log" >&2
        exit 1
    fi
    line="$name $name.so $name.inputs.safetensors"
    wargs=
    if [ "$weights" != "-" ]; then
        cp "$src/$weights.safetensors" "$out/$name.weights.safetensors" || exit 1
        line="$line $name.weights.safetensors"
        wargs=$out/$name.weights.safetensors
    fi
    line="$line --train $steps"
    [ "$flags" = "-" ] || line="$line $(echo "$flags" | tr ',=' '  ')"
    # shellcheck disable=SC2086 # wargs is empty or one path without spaces
    if ! "$out/check" --record "$out/$name.inputs.safetensors" "$out/ref/$name.so" "random:$batch" $wargs \
        --train "$steps" >"$out/ref/$name.record.log" 2>&1; then
        echo "prepare: $name: recording the CPU reference failed:" >&2
        cat "$out/ref/$name.record.log" >&2
        exit 1
    fi
    echo "$line" >>"$out/cases.txt"
done || failed=1
[ $failed -eq 0 ] || exit 1
n=$(grep -c . "$out/cases.txt")
[ "$n" -gt 0 ] || { echo "prepare: no case selected (CASES='$CASES')" >&2; exit 1; }
echo "prepare: $n cases in $out/cases.txt; copy $out (without ref/) to the GPU machine and run:"
echo "    sh PREPARED_DIR/run.sh PREPARED_DIR OUT_DIR"
