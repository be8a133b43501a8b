#!/bin/bash
# Runs kiln's GPU tests and benchmarks on the device machine, from the
# folder that tools/gpu_prepare.sh fills (carried as .tmp/gpu). Logs go to
# $OUT (or /tmp/gpu-out).
set -o pipefail
D=${1:-.tmp/gpu}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
cd "$D" || exit 1
export KILN_SHARED=$PWD/shared KILN_MNIST_DIR=$PWD/mnist KILN_CUDA_CACHE=$PWD/cache
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu --format=csv
echo "== gpu/cuda tests"
./gpu_cuda.test -test.v -test.timeout 120s 2>&1 | tee "$OUT/gpu_cuda.log" | grep -E "^(---|FAIL|ok|PASS)|: |panic" | head -60
echo "== backend/cuda tests"
./backend_cuda.test -test.v -test.timeout 300s 2>&1 | tee "$OUT/backend_cuda.log" | grep -E "FAIL|^ok|^PASS|panic|models_test|placement|timing|differ, normalized MSE [0-9.e-]+$" | grep -v " 0 differ" | head -60
echo "== bench (kiln)"
# KILN_BENCH_EXTRA=1 adds mobilenetv2 and ResNet-50 light (copy them with KILN_PREPARE_EXTRA=1)
EXTRA=${KILN_BENCH_EXTRA:+-extra}
timeout ${KILN_BENCH_TIMEOUT:-200} ./gpu_bench -models shared/models -mnist "$KILN_MNIST_DIR" $EXTRA 2>&1 | tee "$OUT/kiln.jsonl"
echo "== bench (PyTorch) and table"
PYTHONUNBUFFERED=1 timeout 150 python3 ../../tools/gpu_bench.py --kiln-json "$OUT/kiln.jsonl" --out "$OUT/bench.md" ${KILN_BENCH_EXTRA:+--extra} 2>&1 | tail -40
