#!/bin/sh
# tests/docs/run.sh -- the doc check (tools/check_docs.sh) as a test suite.
#
# usage: sh tests/docs/run.sh DNNC [FILECHECK]
#
# dnnrun is taken from DNNC's folder (the build puts both there).  FILECHECK
# is accepted for uniformity with the other suites and not used.
dnnc=$1
if [ -z "$dnnc" ]; then
    echo "usage: sh $0 DNNC [FILECHECK]" >&2
    exit 2
fi
case $dnnc in /*) ;; *) dnnc=$(pwd)/$dnnc ;; esac
dnnrun=$(dirname "$dnnc")/dnnrun
cd "$(dirname "$0")/../.." || exit 2
sh tools/check_docs.sh "$dnnc" "$dnnrun"
