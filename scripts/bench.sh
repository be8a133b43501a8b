#!/bin/sh
# Regenerates BENCHMARKS.md's "CPU speed" table: kiln vs ONNX Runtime, same
# machine, same run, median latency (ms) of `kiln bench --compare-ort`.
#
#   KILN_ORT_DIR=/tmp/quant-ort scripts/bench.sh [duration-seconds] > table.md
#
# Each cell's two medians come from KILN_BENCH_ROUNDS (3) alternations of
# kiln and ONNX Runtime, the duration split between them.
#
# KILN_ORT_DIR: a writable copy of ../shared/tools/ort after `npm ci`.
# Columns: kiln FP32 vs ORT FP32 (the fp32 model); kiln INT8 built from ORT's
# own QDQ model vs ORT INT8 (that QDQ model) and vs ORT FP32; for simplecnn
# and ResNet-50 also kiln INT8 calibrated by kiln (--int8 --calib-data).
#
# ResNet-50 (onnx-light-cnns: weights from ConstantOfShape nodes, opset 9)
# has no ORT-made QDQ twin and ONNX Runtime's Python quantizer is not
# installed here, so the script makes one the way ORT's quantize_static
# would: constants and batch norms folded (scripts/foldmodel, as ORT's
# quantization pre-processing does), calibrated on 4 synthetic N(0,1)
# 3x224x224 images (seeded; no ImageNet here: the ranges only shape the
# codes, not the speed), then `kiln quantize --flavor ort`, which follows
# quantize_static's QDQ placement (QUInt8 activations on MinMax ranges,
# QInt8 per-channel weights, int32 biases, Relu after each Conv folded into
# its output Q, every Conv output quantized, float Sum; BENCHMARKS.md, issue
# 7: same node census and structure as ORT 1.30's own quantize_static
# output for this model, same weight codes). kiln's own INT8 build
# calibrates on the same images.
set -eu
dur=${1:-3}
# kiln and ONNX Runtime alternate this many times per cell (kiln bench
# --rounds), so a burst of other load hits both sides of a ratio.
rounds=${KILN_BENCH_ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${KILN_SHARED:-$root/../shared}
: "${KILN_ORT_DIR:?set KILN_ORT_DIR (see ../shared/tools/ort)}"
export KILN_ORT_DIR
kiln=$(mktemp -d)/kiln
(cd "$root" && go build -o "$kiln" ./cmd/kiln)
tmp=$(mktemp -d)
cache=$tmp/timing.json
b=$shared/models/bench
r50=$shared/models/onnx-light-cnns/resnet50/model.onnx
python3 "$root/scripts/synthimages.py" "$tmp/r50calib"
(cd "$root" && go run ./scripts/foldmodel "$r50" "$tmp/r50.folded.onnx") 2>/dev/null
"$kiln" quantize "$tmp/r50.folded.onnx" --calib-data "$tmp/r50calib" --flavor ort -o "$tmp/r50.int8.qdq.onnx" >/dev/null 2>&1

# Per-core ceilings of this machine (best of the FMA and VPDPBUSD loops) and
# each model's multiply-accumulates, for the achieved fraction of peak.
peaks=$(cd "$root" && go test -run XXX -bench 'PeakFMA$|PeakVNNI$' -benchtime 300ms ./kernels/avx 2>/dev/null |
	awk '/PeakFMA/ {for (i = 1; i < NF; i++) if ($(i+1) == "best-GFLOP/s") f = $i} /PeakVNNI/ {for (i = 1; i < NF; i++) if ($(i+1) == "best-GOP/s") q = $i} END {print f, q}')
set -- $peaks
peak32=${1:-0} peak8=${2:-0}
gflop() { (cd "$root" && go run ./tools/flops -batch "$2" "$1") | awk '/^total/ {print $(NF-4)}'; }

# bench MODEL BATCH THREADS [flags]: prints "kiln_ms ort_ms"
bench() {
	m=$1 batch=$2 th=$3
	shift 3
	"$kiln" bench "$m" --batch "$batch" --threads "$th" --duration "$dur" --compare-ort --rounds "$rounds" --json \
		--timing-cache "$cache" "$@" 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f %.3f" % (j["latency"]["median_ms"], j["ort"]["median_ms"]))'
}

echo "Per-core ceilings: FP32 FMA $peak32 GFLOP/s, INT8 VPDPBUSD $peak8 GOP/s. % of peak: the model's 2 x MACs (tools/flops) per"
echo "second over threads x the ceiling (FP32 engines against the FMA one, INT8 engines against VPDPBUSD's)."
echo
echo "| model | batch | threads | kiln FP32 | ORT FP32 | kiln/ORT FP32 | kiln INT8 (QDQ) | ORT INT8 | kiln INT8 / ORT INT8 | kiln INT8 / ORT FP32 | kiln INT8 (kiln-calibrated) | % of peak: kiln FP32, ORT FP32, kiln INT8 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for spec in "simplecnn 1" "simplecnn 256" "mobilenetv2 1" "bert4 1" "resnet50 1"; do
	set -- $spec
	name=$1 batch=$2
	fp32=$b/$name.fp32.onnx qdq=$b/$name.int8.qdq.onnx
	if [ "$name" = resnet50 ]; then
		fp32=$r50 qdq=$tmp/r50.int8.qdq.onnx
	fi
	gf=$(gflop "$fp32" "$batch")
	for th in 1 2; do
		set -- $(bench "$fp32" "$batch" "$th")
		kf=$1 of=$2
		set -- $(bench "$qdq" "$batch" "$th" --int8)
		ki=$1 oi=$2
		kc=—
		case $name in
		simplecnn)
			set -- $(bench "$fp32" "$batch" "$th" --int8 --calib-data mnist --calib-batches 10)
			kc=$1
			;;
		resnet50)
			set -- $(bench "$fp32" "$batch" "$th" --int8 --calib-data "$tmp/r50calib" --calib-cache "$tmp/r50.cache")
			kc=$1
			;;
		esac
		python3 -c "
pk = lambda ms, peak: '%.0f%%' % (100 * $gf / (ms / 1e3) / ($th * peak)) if peak else '—'
print('| $name | $batch | $th | $kf | $of | %.2f | $ki | $oi | %.2f | %.2f | $kc | %s, %s, %s |' % ($kf/$of, $ki/$oi, $ki/$of, pk($kf, $peak32), pk($of, $peak32), pk($ki, $peak8)))"
	done
done
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
