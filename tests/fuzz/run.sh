#!/bin/sh
# tests/fuzz/run.sh -- builds the libFuzzer harnesses (build-fuzz/) and runs
# each for SECONDS from its committed seed corpus and dictionary.
#
# usage: tests/fuzz/run.sh SECONDS [HARNESS...]
#
# HARNESS: fuzz_frontend fuzz_ir_read fuzz_safetensors fuzz_idx (default:
# all four, one after the other).  Each runs in libFuzzer's fork mode, so a
# finding is saved and the run goes on: crashes, sanitizer reports, broken
# invariants, inputs slower than FUZZ_TIMEOUT seconds and allocations over
# the harness's malloc limit all land in FINDINGS/<harness>/ as
# crash-*, timeout-* or oom-*.  New inputs that reach new code are kept in
# build-fuzz/corpus/<harness>/, so a second run goes on from the first.
# At the end each harness prints its executions and findings; each finding
# is replayed once for its sanitizer summary and the first frame in the
# tree.  Exits 1 if any harness found something, 2 on a usage or build error.
#
# Environment: FUZZ_BUILD (build folder, default build-fuzz), FUZZ_FINDINGS
# (default FUZZ_BUILD/findings), FUZZ_FORKS (parallel fuzzing processes per
# harness, default 1), FUZZ_TIMEOUT (seconds per input, default 10),
# FUZZ_FLAGS (more libFuzzer flags, after the script's own, which they
# override: -len_control=0 mutates at full length from the start,
# -max_len=N changes the harness's input size limit), CC (the fuzz
# compiler when build-fuzz is first configured, default clang).
# Needs clang 14 and its libFuzzer runtime: see README.md.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=$1
case $secs in '' | *[!0-9]*)
    echo "usage: $0 SECONDS [HARNESS...]" >&2
    exit 2
    ;;
esac
shift
harnesses=${*:-fuzz_frontend fuzz_ir_read fuzz_safetensors fuzz_idx}
build=${FUZZ_BUILD:-$root/build-fuzz}
findings=${FUZZ_FINDINGS:-$build/findings}
forks=${FUZZ_FORKS:-1}
timeout=${FUZZ_TIMEOUT:-10}

if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=${CC:-clang} cmake -S "$root" -B "$build" -DDNNC_FUZZ=ON >"$build.configure.log" 2>&1 || {
        cat "$build.configure.log" >&2
        exit 2
    }
    rm -f "$build.configure.log"
fi
cmake --build "$build" -j2 --target fuzzers >"$build/fuzzers.build.log" 2>&1 || {
    tail -30 "$build/fuzzers.build.log" >&2
    echo "run.sh: building the fuzzers failed (clang and libclang-rt-14-dev installed? see tests/fuzz/README.md)" >&2
    exit 2
}

# 'summary FILE HARNESS' replays one finding and prints what it is.
summary() {
    # shellcheck disable=SC2086 # $3: libFuzzer flags, one word each
    out=$("$build/$2" $3 -timeout="$timeout" -runs=1 "$1" 2>&1)
    what=$(printf '%s\n' "$out" | grep -m1 -E 'invariant broken|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:' |
        sed -e 's/^==[0-9]*== *//' -e 's/ on address.*//' -e 's/^ERROR: //' -e 's/malloc([0-9]*)/malloc(...)/')
    where=$(printf '%s\n' "$out" | grep -E "^ *#[0-9]+ .* in [^ ]+ $root/" | grep -v "$root/tests/fuzz/" | head -1 |
        sed -e 's/.* in \([^ ]*\) /\1 /' -e "s|$root/||")
    printf '%s%s\n' "${what:-no report on replay}" "${where:+ at $where}"
}

status=0
for h in $harnesses; do
    case $h in
    fuzz_frontend) dict=dnn.dict len=65536 extra="" ;;
    fuzz_ir_read) dict=ir.dict len=16384 extra="" ;;
    fuzz_safetensors) dict=safetensors.dict len=32768 extra="" ;;
    fuzz_idx) dict=idx.dict len=4096 extra="-malloc_limit_mb=256" ;; # no data set needs more
    *)
        echo "run.sh: no harness '$h' (fuzz_frontend fuzz_ir_read fuzz_safetensors fuzz_idx)" >&2
        exit 2
        ;;
    esac
    mkdir -p "$build/corpus/$h" "$findings/$h"
    log=$findings/$h.log
    mark=$findings/.$h.start
    touch "$mark"
    # shellcheck disable=SC2086 # $extra and $FUZZ_FLAGS: flags, one word each
    "$build/$h" -fork="$forks" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 -timeout="$timeout" $extra \
        -max_total_time="$secs" -max_len="$len" -dict="$here/$dict" -artifact_prefix="$findings/$h/" $FUZZ_FLAGS \
        "$build/corpus/$h" "$here/corpus/$h" >"$log" 2>&1
    rc=$?
    # Fork mode's last status line: '#EXECS: cov: C ft: F corp: K exec/s E oom/timeout/crash: O/T/C time: S ...'
    last=$(grep -E '^#[0-9]+: ' "$log" | tail -1)
    execs=$(printf '%s' "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    cov=$(printf '%s' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    corp=$(printf '%s' "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    new=$(find "$findings/$h" -type f -newer "$mark" | sort)
    nnew=$(printf '%s' "$new" | grep -c .)
    rm -f "$mark"
    echo "$h: ${execs:-?} executions in $secs s, coverage ${cov:-?}, corpus ${corp:-?}, $nnew new findings (log: $log)"
    [ "$rc" -eq 0 ] || [ "$nnew" -gt 0 ] || echo "  libFuzzer exited with status $rc: see the log"
    if [ "$nnew" -gt 0 ]; then
        status=1
        # One line per distinct report, with how many inputs gave it and one of them.
        for f in $(printf '%s\n' "$new" | head -20); do
            printf '%s\t%s\n' "$(summary "$f" "$h" "$extra")" "$f"
        done | sort | awk -F '\t' '{ n[$1]++; if (!($1 in ex)) ex[$1] = $2 }
            END { for (k in n) printf "  %d x %s\n      e.g. %s\n", n[k], k, ex[k] }'
        [ "$nnew" -le 20 ] || echo "  (only the first 20 findings replayed)"
    fi
done
exit $status
