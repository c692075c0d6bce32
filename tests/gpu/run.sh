#!/bin/sh
# tests/gpu/run.sh -- runs the prepared GPU cases on a GPU machine, which
# needs only sh and the files tests/gpu/prepare.sh wrote (no dnnc, LLVM or
# compiler).  Not a CTest suite: tests/gpu/selftest_cpu.sh runs it on CPU
# libraries.
#
# usage: sh run.sh PREPARED_DIR OUT_DIR
#
# PREPARED_DIR holds the prebuilt libraries, their inputs and weights, the
# prebuilt 'check' (tests/gpu/check.c) and cases.txt, one case a line:
#     name library.so inputs.safetensors [weights.safetensors] [--train N] [check flags]
# (paths relative to PREPARED_DIR; blank lines and lines starting with '#'
# are skipped).  Each case runs
#     check library.so inputs.safetensors [weights.safetensors] [--train N] ...
# under 'timeout 120' ($GPU_CASE_TIMEOUT seconds), and OUT_DIR/gpu.log gets
# the machine (uname, nvidia-smi -L where present), each case's output and
# a line "PASS name (S s)" or "FAIL name (why, S s)", then, when the folder
# holds gpu_torch_resnet.py (prepare.sh BENCH=1) and python3 has PyTorch with
# CUDA, PyTorch's timings of the same ResNet-18, then the totals.
# Exit status: 0 when every case passed, 1 when one failed, 2 on wrong usage
# or a PREPARED_DIR without check or cases.txt.
prep=$1
out=$2
if [ -z "$prep" ] || [ -z "$out" ]; then
    echo "usage: sh $0 PREPARED_DIR OUT_DIR" >&2
    exit 2
fi
limit=${GPU_CASE_TIMEOUT:-120}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
cd "$prep" || exit 2
log=$out/gpu.log
for f in check cases.txt; do
    if [ ! -f "$f" ]; then
        echo "run: $prep has no $f (prepare it with tests/gpu/prepare.sh)" >&2
        exit 2
    fi
done
[ -x check ] || chmod +x check 2>/dev/null

# Wall-clock now in milliseconds (in seconds where date has no %N).
now_ms() {
    t=$(date +%s%N 2>/dev/null)
    case $t in *N | '') echo $(($(date +%s) * 1000)) ;; *) echo $((t / 1000000)) ;; esac
}
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

{
    echo "# tests/gpu/run.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "# $(uname -a)"
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi -L 2>&1 | sed 's/^/# /'
    else
        echo "# nvidia-smi: not installed"
    fi
} >"$log"
if command -v timeout >/dev/null 2>&1; then
    tmo="timeout $limit"
else
    tmo=
    echo "# timeout: not installed, cases run without a time limit" >>"$log"
fi

passed=0
failed=0
while read -r line || [ -n "$line" ]; do
    case $line in '' | '#'*) continue ;; esac
    # shellcheck disable=SC2086 # a case line is a list of words
    set -- $line
    name=$1
    if [ $# -lt 3 ]; then
        echo "FAIL $name (bad line in cases.txt: '$line')" >>"$log"
        failed=$((failed + 1))
        continue
    fi
    shift
    echo "== $name: check $*" >>"$log"
    start=$(now_ms)
    # shellcheck disable=SC2086 # tmo is empty or two words
    $tmo ./check "$@" </dev/null >>"$log" 2>&1
    rc=$?
    took=$(secs $(($(now_ms) - start)))
    if [ $rc -eq 0 ]; then
        echo "PASS $name ($took s)" >>"$log"
        passed=$((passed + 1))
    else
        case $rc in
        124 | 137) why="timed out after $limit s" ;;
        *) why="exit $rc" ;;
        esac
        echo "FAIL $name ($why, $took s)" >>"$log"
        failed=$((failed + 1))
    fi
    tail -n 1 "$log"
done <cases.txt

# The PyTorch side of the benchmark (prepare.sh BENCH=1), where PyTorch has CUDA.
if [ -f gpu_torch_resnet.py ]; then
    echo "== PyTorch ResNet-18 (gpu_torch_resnet.py)" >>"$log"
    if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)' >/dev/null 2>&1; then
        # shellcheck disable=SC2086 # tmo is empty or two words
        $tmo python3 gpu_torch_resnet.py </dev/null >>"$log" 2>&1 || echo "# gpu_torch_resnet.py failed" >>"$log"
    else
        echo "# PyTorch with CUDA is not installed here: no PyTorch timings" >>"$log"
    fi
fi

echo "# $passed passed, $failed failed" >>"$log"
echo "run: $passed passed, $failed failed (log: $log)"
[ $((passed + failed)) -gt 0 ] || { echo "run: cases.txt lists no case" >&2; exit 2; }
[ $failed -eq 0 ]
