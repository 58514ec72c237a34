#!/usr/bin/env bash
# The GPU measurements of the paper's real-size path, as one script (run on a GPU host from the
# repository root with the main environment: `bash benchmarks/gpu_checks.sh`). Each step has its own
# timeout; results merge into benchmarks/results/*.json. Not run in CI (no GPU there).
#
#   1. one WAN-1.3B THFM train step in bf16 at 81x480x832, MFU printed (goal >= 40%), stage 1 and stage 2
#   2. WAN 2.1 VAE encode throughput at 81x480x832 (random weights: timing does not depend on them)
#   3. the real-size preprocessing path on the GPU (VAE on the device, labels on the host)
set -u
PY=${PY:-.venv/bin/python}
T=${T:-540}
timeout "$T" "$PY" benchmarks/train_step.py --config wan21_1_3b --frames 81 --height 480 --width 832 \
    --batch 1 --dtype bfloat16 --remat --steps 5 --warmup 2 --peak table || echo "train_step stage 1 failed: $?"
timeout "$T" "$PY" benchmarks/train_step.py --config wan21_1_3b --frames 81 --height 480 --width 832 \
    --batch 1 --dtype bfloat16 --remat --steps 3 --warmup 1 --stage 2 --peak table || echo "train_step stage 2 failed: $?"
timeout "$T" "$PY" benchmarks/vae_encode.py --config wan21 --frames 81 --height 480 --width 832 \
    --dtype bfloat16 --repeats 3 || echo "vae_encode failed: $?"
timeout "$T" "$PY" benchmarks/preprocess_realsize.py --variants dct wan21 || echo "preprocess_realsize failed: $?"
