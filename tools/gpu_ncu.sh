#!/bin/bash
# Nsight Compute on one launch of a kiln kernel inside gpu_bench -profile
# (batch 256), in one device call: a first pass lists the kernel's launches
# with their grid sizes (cheap metrics), the second profiles the first
# launch whose grid is GRID with --set full and writes the details and the
# per-SASS-line source page as CSV under $OUT. Run from the repository root
# with .tmp/gpu carried (tools/gpu_prepare.sh). The clocks are left as the
# card has them (--clock-control none). KERNEL (regex, default
# ^ign3?_i8_i8$), GRID (default 25088: ResNet-50's res2 1x1 64->256 convs at
# batch 256), PREC (int8). CONV (a gpu_bench -conv spec, with TACTIC the
# only conv tactic offered) profiles that one layer instead of the whole
# ResNet-50 build, whose tactic timing under ncu takes minutes; PICK=last
# takes the last launch with the grid (the layer itself, run after the
# same-shaped residual conv) instead of the first.
set -o pipefail
D=${1:-.tmp/gpu}
OUT=${OUT:-/tmp/gpu-out}
cd "$D" || exit 1
export KILN_SHARED=$PWD/shared KILN_MNIST_DIR=$PWD/mnist KILN_CUDA_CACHE=$PWD/cache
K=${KERNEL:-^ign3?_i8_i8\$}
B="./gpu_bench -models shared/models -batch 256 -iters 1 -profile ${PREC:-int8} -nhwc on"
[ -n "$CONV" ] && B="./gpu_bench -batch 256 -iters 3 -conv $CONV -convprec ${PREC:-int8}${TACTIC:+ -tactic $TACTIC}"
timeout ${T_LIST:-150} ncu --clock-control none --kernel-name "regex:$K" --metrics launch__grid_size,gpu__time_duration.sum --csv $B > "$OUT/ncu_list.csv" 2> "$OUT/ncu_list.err"
echo "list exit $?"
idx=$(python3 - "$OUT/ncu_list.csv" ${GRID:-25088} ${PICK:-first} <<'PY'
import csv, sys
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
hdr, rows = rows[0], rows[1:]
iid, iname, ival = hdr.index("ID"), hdr.index("Metric Name"), hdr.index("Metric Value")
ids = []
for r in rows:
    if r[iname] == "launch__grid_size" and r[ival].replace(",", "") == sys.argv[2]:
        ids.append(int(r[iid]))
seen = sorted({int(r[iid]) for r in rows})
print(seen.index(ids[-1] if sys.argv[3] == "last" else ids[0]) if ids else -1)
PY
)
echo "launch index $idx"
[ "$idx" -ge 0 ] || exit 1
timeout ${T_FULL:-200} ncu -f --clock-control none --set full --import-source yes --kernel-name "regex:$K" --launch-skip $idx --launch-count 1 -o /tmp/ncuprof $B > "$OUT/ncu_full.log" 2>&1
echo "full exit $?"
ncu --import /tmp/ncuprof.ncu-rep --page details --csv > "$OUT/ncu_details.csv" 2>&1
ncu --import /tmp/ncuprof.ncu-rep --page source --print-source sass --csv > "$OUT/ncu_source.csv" 2>&1
grep -E '"(Duration|Registers Per Thread|Achieved Occupancy|Theoretical Occupancy|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|Executed Ipc Active|Issue Slots Busy|Warp Cycles Per Issued Instruction|No Eligible|Block Limit [A-Za-z ]+|Grid Size|Executed Instructions|L1/TEX Hit Rate|L2 Hit Rate|Dynamic Shared Memory Per Block)"' "$OUT/ncu_details.csv" | cut -d, -f12- | head -40
