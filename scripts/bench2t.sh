#!/bin/sh
# Repeated two-thread samples of the batch-1 rows whose ratio to ONNX Runtime
# is close to a goal (issue 7): this VM's two-thread times are bimodal for
# both engines, so one bench.sh row cannot settle them. Each round runs
# `kiln bench --compare-ort` (kiln and ORT in the same command) for
# mobilenetv2 FP32 and INT8 (ORT's QDQ), ResNet-50 FP32, INT8 from a QDQ
# with ORT quantize_static's placement (kiln quantize --flavor ort, as in
# bench.sh) and kiln-calibrated INT8 (vs ORT FP32), on the same 4 N(0,1)
# calibration images as bench.sh.
# Output: "round name kiln_ms ort_ms load". Usage: sh scripts/bench2t.sh [ROUNDS]
set -eu
rounds=${1:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${KILN_SHARED:-$root/../shared}
: "${KILN_ORT_DIR:?set KILN_ORT_DIR (see ../shared/tools/ort)}"
export KILN_ORT_DIR
d=$(mktemp -d)
k=$d/kiln
(cd "$root" && go build -o "$k" ./cmd/kiln)
b=$shared/models/bench
(cd "$root" && go run ./scripts/foldmodel "$shared/models/onnx-light-cnns/resnet50/model.onnx" "$d/r50.onnx") >/dev/null 2>&1
python3 "$root/scripts/synthimages.py" "$d/r50calib"
"$k" quantize "$d/r50.onnx" --calib-data "$d/r50calib" --flavor ort -o "$d/r50.int8.qdq.onnx" >/dev/null 2>&1
sample() { # name model [build flags]
	name=$1 m=$2
	shift 2
	r=$("$k" bench "$m" --batch 1 --threads 2 --duration 3 --compare-ort --json --timing-cache "$d/timing.json" "$@" 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f %.3f" % (j["latency"]["median_ms"], j["ort"]["median_ms"]))')
	echo "$round $name $r $(cut -d' ' -f1 /proc/loadavg)"
}
round=1
while [ "$round" -le "$rounds" ]; do
	sample mnv2-fp32 "$b/mobilenetv2.fp32.onnx"
	sample mnv2-int8qdq "$b/mobilenetv2.int8.qdq.onnx"
	sample r50-fp32 "$d/r50.onnx"
	sample r50-int8qdq "$d/r50.int8.qdq.onnx"
	sample r50-int8kiln "$d/r50.onnx" --int8 --calib-data "$d/r50calib" --calib-cache "$d/r50.cache"
	round=$((round + 1))
done
rm -rf "$d"
