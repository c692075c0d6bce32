#!/bin/sh
# infer_resnet.sh -- ResNet-18 (3x224x224) inference latency at batch 1 and 8,
# dnnc against PyTorch: bench/infer_model.sh -m resnet18 (see there).
#   bench/infer_resnet.sh [-t THREADS] [-r ROUNDS] [-n REPS] [-B "BATCHES"] [-b BUILD_DIR]
exec sh "$(dirname "$0")/infer_model.sh" -m resnet18 "$@"
