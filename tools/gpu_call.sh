#!/bin/bash
# One device call for GPU kernel work (run from the repository root with
# .tmp/gpu carried; tools/gpu_prepare.sh builds it): the steps named by
# the environment, in this order, each under its own timeout, and
# everything they write packed into $OUT/bundle.tgz (the device tool
# returns at most 8 files).
#   SASS="ignq_i8_i8 …"   SASS and register use of wgmma.cu/wgmmap.cu kernels (tools/gpu_sass.py)
#   TESTS=regex           gpu/cuda's tests, then backend/cuda's matching regex (T_TEST seconds, 200)
#   CONVT="spec@tactic …" one layer built and profiled alone (gpu_bench -conv, -tactic)
#   CNN=int8,fp8          ResNet-50 and mobilenetv2 end to end at batch 256 (KILN_CUDA_GRAPHS=0 gpu_bench -cnn)
#   RT=events,lean,pdl    with CNN: also time each engine under these run-time variants (gpu_bench -rt)
#   MODELS=resnet50       with CNN: only these models (gpu_bench -cnnmodels)
#   CUDATESTS=0           with TESTS: skip gpu/cuda's tests
#   BASE=int8,fp8         the same with .tmp/gpu/gpu_bench_base (an earlier commit's build, the baseline;
#                         T_BASE seconds, T_CNN's by default; each -cnn build times tactics at batch 256:
#                         ResNet-50 INT8 65–95 s, FP8 90–115 s, FP16 135–165 s, mobilenetv2 ~20 s each)
#   SIMPLE=1              GEMMs at 8192³ and SimpleCNN (batch 256 and 4096, every precision) with PyTorch's
#                         numbers in one table (gpu_bench without -cnn, then tools/gpu_bench.py; T_SIMPLE, 240),
#                         then SimpleCNN FP16 end to end in every input-copy variant (gpu_bench -io)
#   PROF=int8             per-step profile (gpu_bench -profile)
#   TORCH=1               PyTorch FP16 in the same call (tools/gpu_torch_profile.py)
#   NCUS="spec@tactic@kernel-regex@grid@first|last …"  Nsight Compute on one layer (tools/gpu_ncu.sh CONV=…)
#   END=seconds           the call's budget: NCUS steps stop when under 90 s remain (570)
#   KEEPCACHE=1           also return the NVRTC cache as $OUT/cache.tgz; put it in .tmp/gpu/cache0.tgz for
#                         the next call, whose unchanged modules then skip NVRTC (about 90 s for all, cold)
set -o pipefail
T0=$(date +%s)
ROOT=$PWD
cd .tmp/gpu || exit 1
export KILN_SHARED=$PWD/shared KILN_MNIST_DIR=$PWD/mnist KILN_CUDA_CACHE=$PWD/cache
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
left() { echo $(( ${END:-570} - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
if [ -f cache0.tgz ]; then
  mkdir -p /tmp/c0 cache && tar xzf cache0.tgz -C /tmp/c0 && cp -n /tmp/c0/cache/* cache/ 2>/dev/null
fi
if [ -n "$SASS" ]; then
  cat "$ROOT"/gpu/cuda/kernels/{nhwc.cuh,wgmma.cu,wgmmap.cu,wgmmah.cu} > /tmp/wg.cu
  mkdir -p "$OUT/sass"
  python3 "$ROOT/tools/gpu_sass.py" "$ROOT/gpu/cuda/kernels/common.cuh" /tmp/wg.cu "$OUT/sass" $SASS 2>&1 | grep -aE "REG|Function|error" | cut -c1-160
  el sass
fi
if [ -n "$TESTS" ]; then
  if [ "${CUDATESTS:-1}" != 0 ]; then
    timeout 170 ./gpu_cuda.test -test.v -test.timeout 160s > "$OUT/gpu_cuda.log" 2>&1
    el "gpu/cuda tests exit $?"; grep -E "^(--- FAIL|FAIL|ok|PASS)|panic" "$OUT/gpu_cuda.log" | head -5
  fi
  L=$(left); [ "$L" -gt "${T_TEST:-200}" ] && L=${T_TEST:-200}; [ "$L" -lt 30 ] && L=30
  timeout "$L" ./backend_cuda.test -test.v -test.run "$TESTS" -test.timeout $((L - 5))s > "$OUT/backend_cuda.log" 2>&1
  el "backend/cuda tests exit $? (limit $L s)"
  grep -E "^(--- FAIL|FAIL|ok|PASS)|^    --- FAIL|panic|_test.go:[0-9]+: .*(MSE [0-9.e-]+ >|not on the GPU|run:|decode:|differ from|illegal|NVRTC)" "$OUT/backend_cuda.log" | cut -c1-200 | head -40
fi
for ct in $CONVT; do
  spec=${ct%@*}; tac=${ct#*@}; [ "$tac" = "$ct" ] && tac=
  timeout 90 ./gpu_bench -batch 256 -iters 10 -conv "$spec" -convprec "${PREC:-int8}" ${tac:+-tactic $tac} >> "$OUT/convt.txt" 2>&1
  el "conv $spec $tac exit $?"
done
cnn() { # binary, precisions, output file, seconds
  KILN_CUDA_GRAPHS=0 timeout "$4" "./$1" -models shared/models -batch 256 -iters 20 -cnn "$2" -nhwc on -tacticlog "$OUT/$3.tactics.log" $5 > "$OUT/$3.jsonl" 2>&1
  el "$1 -cnn exit $?"
  grep -E '^\{' "$OUT/$3.jsonl" | sed -E 's/"(ms|h2d_ms|d2h_ms|batch|steps)":[^,]*,//g' | cut -c1-300
}
[ -n "$CNN" ] && cnn gpu_bench "$CNN" cnn "${T_CNN:-150}" "${RT:+-rt $RT} ${MODELS:+-cnnmodels $MODELS}"
# an older binary may build for longer (session 8's took 126 s for ResNet-50 INT8 at opt 256)
[ -n "$BASE" ] && cnn gpu_bench_base "$BASE" cnn_base "${T_BASE:-${T_CNN:-150}}"
if [ -n "$SIMPLE" ]; then
  KILN_CUDA_GRAPHS=0 timeout "${T_SIMPLE:-240}" ./gpu_bench -models shared/models -mnist "$KILN_MNIST_DIR" -iters 20 > "$OUT/simple.jsonl" 2>&1
  el "gpu_bench (GEMMs, SimpleCNN) exit $?"
  PYTHONUNBUFFERED=1 timeout 150 python3 "$ROOT/tools/gpu_bench.py" --kiln-json "$OUT/simple.jsonl" --out "$OUT/simple.md" --iters 20 2>&1 | tail -30
  el "gpu_bench.py exit $?"
  # SimpleCNN FP16 end to end from pageable, staged and caller-pinned inputs (PyTorch's e2e reads a pinned input)
  timeout 120 ./gpu_bench -models shared/models -io -iomodels simplecnn -iters 20 > "$OUT/simple_io.jsonl" 2>&1
  el "gpu_bench -io exit $?"
  grep -E '^\{' "$OUT/simple_io.jsonl" | sed -E 's/"(build_s|steps)":[^,]*,//g' | cut -c1-300
fi
if [ -n "$PROF" ]; then
  timeout "${T_PROF:-120}" ./gpu_bench -models shared/models -batch 256 -iters 5 -profile "$PROF" -nhwc on > "$OUT/profile.txt" 2>&1
  el "profile exit $?"
fi
if [ -n "$TORCH" ]; then
  PYTHONUNBUFFERED=1 timeout "${T_TORCH:-60}" python3 "$ROOT/tools/gpu_torch_profile.py" --batch 256 > "$OUT/torch_profile.txt" 2>&1
  el "torch exit $?"; grep -E "^(torch|resnet50|mobilenetv2)" "$OUT/torch_profile.txt" | head -4
fi
i=0
for n in $NCUS; do
  [ "$(left)" -lt 90 ] && { el "ncu skipped: under 90 s left"; break; }
  i=$((i + 1)); IFS=@ read -r spec tac kern grid pick <<< "$n"
  mkdir -p "/tmp/ncu$i" "$OUT/ncu$i"
  (cd "$ROOT" && OUT=/tmp/ncu$i CONV=$spec TACTIC=$tac KERNEL="$kern" GRID=$grid PICK=${pick:-last} PREC=${PREC:-int8} \
    T_LIST=90 T_FULL=150 bash tools/gpu_ncu.sh .tmp/gpu 2>&1 | tail -30)
  cp /tmp/ncu$i/ncu_details.csv /tmp/ncu$i/ncu_source.csv /tmp/ncu$i/ncu_list.csv "$OUT/ncu$i/" 2>/dev/null
  el "ncu $i $spec done"
done
el total
(cd "$OUT" && tar czf /tmp/bundle.tgz . && find . -mindepth 1 -delete && mv /tmp/bundle.tgz .)
if [ -n "$KEEPCACHE" ]; then tar czf "$OUT/cache.tgz" cache; fi
exit 0
