#!/bin/sh
# Regenerates BENCHMARKS.md's "CPU speed" table: kiln vs ONNX Runtime, same
# machine, same run, median latency (ms) of `kiln bench --compare-ort`.
#
#   KILN_ORT_DIR=/tmp/quant-ort scripts/bench.sh [duration-seconds] > table.md
#
# KILN_ORT_DIR: a writable copy of ../shared/tools/ort after `npm ci`.
# Columns: kiln FP32 vs ORT FP32 (the fp32 model); kiln INT8 built from ORT's
# own QDQ model vs ORT INT8 (that QDQ model) and vs ORT FP32; for simplecnn
# also kiln INT8 calibrated by kiln (--int8 --calib-data mnist).
set -eu
dur=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${KILN_SHARED:-$root/../shared}
: "${KILN_ORT_DIR:?set KILN_ORT_DIR (see ../shared/tools/ort)}"
export KILN_ORT_DIR
kiln=$(mktemp -d)/kiln
(cd "$root" && go build -o "$kiln" ./cmd/kiln)
cache=$(mktemp -d)/timing.json
b=$shared/models/bench

# bench MODEL BATCH THREADS [flags]: prints "kiln_ms ort_ms"
bench() {
	m=$1 batch=$2 th=$3
	shift 3
	"$kiln" bench "$m" --batch "$batch" --threads "$th" --duration "$dur" --compare-ort --json \
		--timing-cache "$cache" "$@" 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f %.3f" % (j["latency"]["median_ms"], j["ort"]["median_ms"]))'
}

echo "| model | batch | threads | kiln FP32 | ORT FP32 | kiln/ORT FP32 | kiln INT8 (QDQ) | ORT INT8 | kiln INT8 / ORT INT8 | kiln INT8 / ORT FP32 | kiln INT8 (kiln-calibrated) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for spec in "simplecnn 1" "simplecnn 256" "mobilenetv2 1" "bert4 1" "resnet50 1"; do
	set -- $spec
	name=$1 batch=$2
	for th in 1 2; do
		if [ "$name" = resnet50 ]; then
			set -- $(bench "$shared/models/onnx-light-cnns/resnet50/model.onnx" "$batch" "$th")
			echo "| $name | $batch | $th | $1 | $2 | $(python3 -c "print('%.2f' % ($1/$2))") | — | — | — | — | — |"
			continue
		fi
		set -- $(bench "$b/$name.fp32.onnx" "$batch" "$th")
		kf=$1 of=$2
		set -- $(bench "$b/$name.int8.qdq.onnx" "$batch" "$th" --int8)
		ki=$1 oi=$2
		kc=—
		if [ "$name" = simplecnn ]; then
			set -- $(bench "$b/$name.fp32.onnx" "$batch" "$th" --int8 --calib-data mnist --calib-batches 10)
			kc=$1
		fi
		python3 -c "print('| $name | $batch | $th | $kf | $of | %.2f | $ki | $oi | %.2f | %.2f | $kc |' % ($kf/$of, $ki/$oi, $ki/$of))"
	done
done
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
