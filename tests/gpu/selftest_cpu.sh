#!/bin/sh
# tests/gpu/selftest_cpu.sh -- the CTest case gpu_scripts_cpu: the GPU
# scripts end to end without a GPU, on OpenCL libraries (PoCL in CI: the
# GPU kernels' text run on the CPU) checked against the CPU's recordings.
#
# usage: sh tests/gpu/selftest_cpu.sh DNNC_BIN
#
# prepare.sh for opencl builds a few cases (dropout's masks among them) and
# run.sh must pass them all, and time one with --bench;
# then a case whose expected outputs were recorded with another seed (so
# different initial weights) and one whose inputs belong to another model
# must fail, each named in gpu.log, and run.sh must exit 1.  $CC and
# $CHECK_CFLAGS reach prepare.sh (the sanitizer build passes its flags).
dnnc=$1
if [ -z "$dnnc" ]; then
    echo "usage: sh $0 DNNC_BIN" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*"
    [ -f "$tmp/out/gpu.log" ] && cat "$tmp/out/gpu.log"
    exit 1
}

CASES="mlp mlp_golden lenet_golden dropout" sh "$here/prepare.sh" "$dnnc" "$tmp/prep" opencl ||
    fail "prepare.sh failed"
[ "$(grep -c . "$tmp/prep/cases.txt")" -eq 4 ] || fail "cases.txt does not list 4 cases"
echo "bench_mlp mlp.so mlp.inputs.safetensors --train 3 --bench 3" >>"$tmp/prep/cases.txt"
grep -q '^mlp_golden mlp_golden.so mlp_golden.inputs.safetensors mlp_golden.weights.safetensors --train 3$' \
    "$tmp/prep/cases.txt" || fail "unexpected cases.txt: $(cat "$tmp/prep/cases.txt")"

# Only the prepared files travel to a GPU machine: run from a copy without ref/.
mkdir "$tmp/gpu" && cp "$tmp/prep"/* "$tmp/gpu/" 2>/dev/null
rm -rf "$tmp/gpu/ref"
sh "$tmp/gpu/run.sh" "$tmp/gpu" "$tmp/out" || fail "run.sh failed on the prepared cases"
for c in mlp mlp_golden lenet_golden dropout bench_mlp; do
    grep -q "^PASS $c (" "$tmp/out/gpu.log" || fail "no PASS line for $c"
done
grep -q "^logits: max abs err .* (ok)" "$tmp/out/gpu.log" || fail "no comparison line in gpu.log"
grep -q "^train_loss: max abs err .* (ok)" "$tmp/out/gpu.log" || fail "no loss comparison in gpu.log"
grep -q "^bench: infer batch 8 median .* ms (3 calls)" "$tmp/out/gpu.log" || fail "no bench line"
grep -q "^bench: train_step batch 8 median .* ms (3 calls)" "$tmp/out/gpu.log" || fail "no train bench line"
grep -q "^# 5 passed, 0 failed" "$tmp/out/gpu.log" || fail "no totals line"

# A wrong expectation: the outputs of other initial weights (seed 2).
"$tmp/prep/check" --record "$tmp/gpu/wrong.safetensors" "$tmp/prep/ref/mlp.so" random:8 --seed 2 >/dev/null ||
    fail "check --record failed"
{
    echo "# deliberately failing cases"
    echo "wrong_expect mlp.so wrong.safetensors"
    echo "wrong_inputs mlp.so lenet_golden.inputs.safetensors"
} >>"$tmp/gpu/cases.txt"
sh "$tmp/gpu/run.sh" "$tmp/gpu" "$tmp/out"
rc=$?
[ $rc -eq 1 ] || fail "run.sh exited $rc with failing cases, not 1"
grep -q "^PASS mlp (" "$tmp/out/gpu.log" || fail "the good cases no longer pass"
grep -q "^logits: max abs err .* (FAIL)" "$tmp/out/gpu.log" || fail "no FAIL comparison for wrong_expect"
grep -q "^FAIL wrong_expect (exit 1" "$tmp/out/gpu.log" || fail "wrong_expect not reported"
grep -q "^FAIL wrong_inputs (exit 1" "$tmp/out/gpu.log" || fail "wrong_inputs not reported"
grep -q "^# 5 passed, 2 failed" "$tmp/out/gpu.log" || fail "wrong totals"

sh "$tmp/gpu/run.sh" "$tmp/nothing" "$tmp/out2" 2>/dev/null
[ $? -eq 2 ] || fail "run.sh on a folder without cases did not exit 2"
echo "gpu scripts: ok"
