#!/bin/sh
# infer_lenet.sh -- LeNet-5 inference latency at batch 1 and 64, dnnc against
# PyTorch: bench/infer_model.sh -m lenet (see there for the options).
#   bench/infer_lenet.sh [-t THREADS] [-r ROUNDS] [-n REPS] [-B "BATCHES"] [-b BUILD_DIR]
exec sh "$(dirname "$0")/infer_model.sh" -m lenet "$@"
