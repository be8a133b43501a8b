package cpu

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// INT8 convolution (kiln.QConv over int8 or uint8 codes, int8 weights) on
// kernels/avx's VNNI micro-kernel: depth ordered (kh, kw, c) with channels
// padded to a multiple of 4, weights packed at build time in 8-row strips
// of 4-deep quads with their row sums (the zero-point correction); per run
// each image is transposed to channels-last u8 and im2col'd by 32-bit
// words; kilnq's epilogue, bit-exact, runs in the micro-kernel's registers.
var simdQConvIDs = isaIDs{fam: famI8, ids: [3]string{"cpu.conv.vnni", "cpu.conv.avx2.i8", "cpu.conv.generic.i8"}}

type simdQConvParams struct {
	Win   window      `json:"win"`
	M     int         `json:"m"`
	Cg    int         `json:"cg"`
	Group int         `json:"group"`
	Bias  bool        `json:"bias,omitempty"`
	Resid bool        `json:"resid,omitempty"`
	ZType ir.DType    `json:"ztype,omitempty"` // the residual's type: float32, or int8/uint8 codes (z_scale > 0)
	Quant *quantParam `json:"quant"`
	XType ir.DType    `json:"xtype"`
	Tile  [2]int      `json:"tile"`
	Order string      `json:"order"`          // depth order of the packed weights: "khwc" (channels-last quads), "chw" or "chw4" (row quads)
	Pool  bool        `json:"pool,omitempty"` // fused 2×2/2 max pool over the output codes (convpool.go)
}

// Depth orders: channels-last quads; for convs with fewer than 4 channels
// per group, ONNX's (c, kh, kw) with kw padded to a multiple of 4 so that
// a quad is 4 bytes of one input row (kernels at least 3 wide, no
// horizontal dilation), else ONNX's order with a byte im2col (no padding).
const (
	simdQOrder     = "khwc"
	simdQOrderCHW  = "chw"
	simdQOrderRows = "chw4"
)

// simdQOrderFor picks the depth order of a conv with cg channels per group.
func simdQOrderFor(cg int, win *window) string {
	switch {
	case cg >= 4:
		return simdQOrder
	case win.Kernel[1] >= 3 && win.Dils[1] == 1:
		return simdQOrderRows
	}
	return simdQOrderCHW
}

// simdQDepth is the packed depth of a conv in the given order.
func simdQDepth(order string, cg, kh, kw int) int {
	switch order {
	case simdQOrderCHW:
		return cg * kh * kw
	case simdQOrderRows:
		return avx.QRowsDepth(cg, kh, kw)
	}
	return kh * kw * avx.Cg4(cg)
}

type simdQConvTactic struct{}

func (simdQConvTactic) Name() string { return "conv." + simdQConvIDs.tag("vnni") + ".i8" }

func (simdQConvTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	w := l.Const[1]
	xt := inDType(l, 0)
	if w.DType != ir.Int8 || (xt != ir.Int8 && xt != ir.Uint8) {
		return nil, fmt.Errorf("%s: int8 conv over %s×%s", n, xt, w.DType)
	}
	group, err := n.AttrInt("group", 1)
	if err != nil {
		return nil, err
	}
	win, err := readWindow(n, w.Dims[2:], true)
	if err != nil {
		return nil, err
	}
	if ks, _ := n.AttrInts("kernel_shape", nil); len(ks) == 2 && (int(ks[0]) != win.Kernel[0] || int(ks[1]) != win.Kernel[1]) {
		return nil, fmt.Errorf("%s: kernel_shape %v does not match W %v", n, ks, w.Dims)
	}
	ql, err := kilnq.ParseLayerMid(n, xt)
	if err != nil {
		return nil, err
	}
	p := simdQConvParams{Win: win, M: int(w.Dims[0]), Cg: int(w.Dims[1]), Group: int(group), Quant: &quantParam{*ql},
		XType: xt, Tile: [2]int{avx.MR, avx.NR}}
	p.Order = simdQOrderFor(p.Cg, &win)
	if p.Pool, err = readPool(n, "i8"); err != nil {
		return nil, err
	}
	if err := simdMidOK(ql, p.Pool); err != nil {
		return nil, fmt.Errorf("%s: %v", n, err)
	}
	if p.Group < 1 || p.M%p.Group != 0 {
		return nil, fmt.Errorf("%s: %d output channels are not divisible by group %d", n, p.M, group)
	}
	if err := simdQLayerOK(ql, p.M); err != nil {
		return nil, fmt.Errorf("%s: %v", n, err)
	}
	K := p.Cg * win.Kernel[0] * win.Kernel[1]
	if K > avxMaxK {
		return nil, fmt.Errorf("%s: depth %d could overflow int32 accumulators", n, K)
	}
	Mg := p.M / p.Group
	taps := win.Kernel[0] * win.Kernel[1]
	Kt := simdQDepth(p.Order, p.Cg, win.Kernel[0], win.Kernel[1])
	sz := avx.QASize(Mg, Kt)
	packed := ir.NewTensor(ir.Int8, []int64{int64(p.Group * sz)})
	sums := ir.NewTensor(ir.Int32, []int64{int64(p.M)})
	src, dst, ss := w.I8(), packed.I8(), sums.I32()
	for g := 0; g < p.Group; g++ {
		wg := src[g*Mg*K : (g+1)*Mg*K]
		switch p.Order {
		case simdQOrder:
			wg = avx.ReorderQWeights(wg, Mg, p.Cg, taps)
		case simdQOrderRows:
			wg = avx.ReorderQWeightsRows(wg, Mg, p.Cg, win.Kernel[0], win.Kernel[1])
		}
		copy(ss[g*Mg:], avx.PackQA(dst[g*sz:(g+1)*sz], wg, Mg, Kt))
	}
	weights := []*ir.Tensor{packed, sums}
	weights, inputs, bias, zType, err := qEpilogueInputs(l, ql, weights, p.M, ir.Int8, ir.Uint8)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid, p.ZType = bias, zType != ir.Undefined, zType
	return lowered(simdQConvIDs.now(), &p, weights, inputs)
}

// avxMaxK bounds the depth: |(x−xz)·w| ≤ 255·128 per term keeps the exact
// int32 sum (the micro-kernel's own sums may wrap: the corrected result is
// exact modulo 2³² and fits).
const avxMaxK = (1<<31 - 1) / (128 * 255)

// simdQLayerOK checks what the VNNI epilogue supports: int8/uint8 or
// float32 outputs, one or per-channel weight scales.
func simdQLayerOK(l *kilnq.Layer, channels int) error {
	if len(l.WScales) != 1 && len(l.WScales) != channels {
		return fmt.Errorf("w_scales has %d entries for %d channels", len(l.WScales), channels)
	}
	if l.YScale != 0 && l.OutType != ir.Int8 && l.OutType != ir.Uint8 {
		return fmt.Errorf("%s outputs: left to the portable kernel", l.OutType)
	}
	return nil
}

// simdMidOK checks a layer's mid quantization (kilnq's m_scale) against
// what the micro-kernel's epilogue takes: a scale in avx.MidOK's range, no
// fused pool.
func simdMidOK(l *kilnq.Layer, pool bool) error {
	switch {
	case l.MScale == 0:
		return nil
	case pool:
		return fmt.Errorf("m_scale with a fused pool: left to the reference kernel")
	case !avx.MidOK(l.MScale):
		return fmt.Errorf("m_scale %g outside the epilogue's range", l.MScale)
	}
	return nil
}

// simdQLayer prepares kilnq's epilogue for the micro-kernel: corrections
// off·Σw (off: the u8 value of the zero point), multipliers, activation.
func simdQLayer(l *kilnq.Layer, channels int, sums []int32, off int32, bias []float32) *avx.QLayer {
	q := &avx.QLayer{Corr: make([]int32, channels), Mult: make([]float32, channels), Bias: bias}
	for c := range channels {
		q.Corr[c] = off * sums[c]
		q.Mult[c] = l.XScale * l.WScales[min(c, len(l.WScales)-1)]
	}
	switch l.Act.Kind {
	case "":
	case "Relu":
		q.Clamp, q.Lo, q.Hi = true, 0, float32(math.Inf(1))
	case "Clip":
		q.Clamp, q.Lo, q.Hi = true, l.Act.Alpha, l.Act.Beta
	default:
		a := l.Act
		q.Act = func(y float32) float32 { return f32.Act32(&a, y) }
		if a.Kind == "Gelu" { // the same function (kiln.Gelu32), a row at a time
			q.Act, q.ActRow = kiln.Gelu32, f32.GeluRow
		}
		q.Quantize = quantizeOutFunc(l)
		if l.OutType == ir.Int8 || l.OutType == ir.Uint8 {
			ys, yz, u := l.YScale, l.YZero, l.OutType == ir.Uint8
			q.QuantizeRow = func(dst []byte, src []float32) { f32.QuantizeRow(dst, src, ys, yz, u) }
		}
	}
	if l.YScale != 0 {
		q.Quant, q.Unsigned, q.YScale, q.YZero = true, l.OutType == ir.Uint8, l.YScale, l.YZero
	}
	if l.MScale > 0 {
		q.MScale = l.MScale
		q.MQLo, q.MQHi = l.MidBounds()
	}
	return q
}

type simdQConvKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	p        simdQConvParams
	w        []int8
	q        *avx.QLayer
	flip     byte // int8 codes → u8 (x+128)
	pad      byte // u8 value of the zero point
	// poolable: the epilogue is non-decreasing in the accumulator, so a
	// fused pool can run in registers (simd_qconvpool.go)
	poolable bool
	plans    poolPlan
	rows     atomic.Pointer[avx.QRowsPlan] // the row-quad packing plan of the last geometry
	runs     runPool[simdQConvRun]
}

func init() { registerISA(simdQConvIDs, newSimdQConvKernel) }

func newSimdQConvKernel(p *simdQConvParams, w []*ir.Tensor) (engine.Kernel, error) {
	if p.M <= 0 || p.Cg <= 0 || p.Group <= 0 || p.M%p.Group != 0 || p.Quant == nil {
		return nil, fmt.Errorf("%s: bad parameters", simdQConvIDs)
	}
	if p.Tile != [2]int{avx.MR, avx.NR} || (p.Order != simdQOrder && p.Order != simdQOrderCHW && p.Order != simdQOrderRows) {
		return nil, fmt.Errorf("%s: weights packed for tile %v, this build uses %dx%d", simdQConvIDs, p.Tile, avx.MR, avx.NR)
	}
	need := 2
	if p.Bias {
		need = 3
	}
	K := simdQDepth(p.Order, p.Cg, p.Win.Kernel[0], p.Win.Kernel[1])
	if len(w) != need || w[0].DType != ir.Int8 || len(w[0].I8()) != p.Group*avx.QASize(p.M/p.Group, K) ||
		w[1].DType != ir.Int32 || len(w[1].I32()) != p.M {
		return nil, fmt.Errorf("%s: packed weights do not match", simdQConvIDs)
	}
	l := &p.Quant.Layer
	if err := simdQLayerOK(l, p.M); err != nil {
		return nil, fmt.Errorf("%s: %v", simdQConvIDs, err)
	}
	if err := simdMidOK(l, p.Pool); err != nil { // a plan's parameters, checked again
		return nil, fmt.Errorf("%s: %v", simdQConvIDs, err)
	}
	var bias []float32
	if p.Bias {
		if w[2].DType != ir.Float32 || len(w[2].F32()) != p.M {
			return nil, fmt.Errorf("%s: bias is %s%v, want float32[%d]", simdQConvIDs, w[2].DType, w[2].Dims, p.M)
		}
		bias = w[2].F32()
	}
	k := &simdQConvKernel{p: *p, w: w[0].I8()}
	off := 128 + l.XZero
	k.flip = 0x80
	if p.XType == ir.Uint8 {
		off, k.flip = l.XZero, 0
	}
	if off < 0 || off > 255 {
		return nil, fmt.Errorf("%s: zero point %d out of range", simdQConvIDs, l.XZero)
	}
	k.pad = byte(off)
	if !floatResidualOK(l.ZScale, p.ZType) {
		return nil, fmt.Errorf("%s: residual codes (%s) without z_scale", simdQConvIDs, p.ZType)
	}
	if l.ZScale != 0 && (!p.Resid || p.ZType != ir.Int8 && p.ZType != ir.Uint8) {
		return nil, fmt.Errorf("%s: z_scale %g needs int8 or uint8 residual codes, the plan says %s", simdQConvIDs, l.ZScale, p.ZType)
	}
	k.q = simdQLayer(l, p.M, w[1].I32(), off, bias)
	setResidual(k.q, l, p.ZType)
	k.poolable = avx.QPoolable(k.q)
	return k, nil
}

// rowsPlan is the row-quad packing plan for geometry g (cached: plans are
// immutable and shared by concurrent runs).
func (k *simdQConvKernel) rowsPlan(g *pack.Conv2D) *avx.QRowsPlan {
	if p := k.rows.Load(); p != nil && p.Matches(g) {
		return p
	}
	p := avx.NewQRowsPlan(g)
	k.rows.Store(p)
	return p
}

func (k *simdQConvKernel) geometry(xd []int64) (pack.Conv2D, error) {
	g, err := k.p.Win.geometry(xd, k.p.M, k.p.Group)
	if err != nil {
		return g, err
	}
	if g.C != k.p.Cg*k.p.Group {
		return g, fmt.Errorf("input has %d channels, the weights want %d", g.C, k.p.Cg*k.p.Group)
	}
	return g, nil
}

func (k *simdQConvKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if in[0].DType != k.p.XType {
		return nil, fmt.Errorf("input is %s, want %s", in[0].DType, k.p.XType)
	}
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return nil, err
	}
	out, err := convOutputDims(in, k.p.M, g, k.p.Resid, k.p.Pool)
	if err != nil {
		return nil, err
	}
	if k.p.Resid {
		if err := checkResidualType(in, k.p.ZType); err != nil {
			return nil, err
		}
	}
	return [][]int64{out}, nil
}

type simdQConvRun struct {
	k                 *simdQConvKernel
	g                 pack.Conv2D
	K                 int // packed depth
	x                 []byte
	xc                []byte // per (image, group): channels-last (khwc) or padded (chw4) copy
	plane             int    // bytes of one such group image
	transposing       bool
	pointwise         bool // 1×1 stride 1 unpadded, channels a multiple of 4: strips packed from x directly
	quadPlanes        bool // channels-last words stored quad-major (kernels up to 7×7): built and gathered vectorized
	z, yf             []float32
	yq, zq            []byte // codes out; residual codes (z_scale > 0)
	sl                slots
	chunk, nch        int
	rows, nrb, groups int
	prows             int      // with a fused pool: pooled rows per item (chunk = 2·prows·OW columns)
	bBytes            int      // slot bytes before the pooled tile
	outType           ir.DType // of the (pooled) output
	tparts            int      // transposing items per group image (quad planes shared out at batch 1)
	pooled            bool     // the fused pool in registers: items are bands of pb pooled outputs (of phw)
	rbMajor           bool     // items numbered row block first (byChannels)
	pb, phw           int
	imgs, images      int // images per item (pb = imgs·phw), or 1: bands of pb inside an image; of the batch
	plan, planLast    *avx.QPoolPlan
	rowsPlan          *avx.QRowsPlan
	shift, shiftLast  *avx.QPoolShift // shift planes instead of plans (quad planes, unit strides) // the last band's (fewer images)
}

func (k *simdQConvKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return err
	}
	N := int(in[0].Dims[0])
	ohw := g.OH * g.OW
	if N == 0 || ohw == 0 {
		return nil
	}
	r := k.runs.get()
	defer k.runs.put(r)
	*r = simdQConvRun{k: k, g: g, K: simdQDepth(k.p.Order, k.p.Cg, g.KH, g.KW), x: in[0].Data, groups: k.p.Group}
	if out[0].DType == ir.Float32 {
		r.yf = out[0].F32()
	} else {
		r.yq = out[0].Data
	}
	switch {
	case k.p.Resid && k.q.ZScale != 0:
		r.zq = in[1].Data
	case k.p.Resid:
		r.z = in[1].F32()
	}
	Mg := k.p.M / k.p.Group
	k4 := avx.K4(r.K)
	th := simdThreads(x.Threads, N*k.p.M*ohw*r.K/k.p.Group)
	chunk := max(avx.NR, (192<<10)/(4*max(k4, 1))/avx.NR*avx.NR)
	per := N * k.p.Group
	if k.poolInRegisters() {
		if g.OH/2 == 0 || g.OW/2 == 0 {
			return nil
		}
		r.pooled = true
		items, slot := r.setupPooled(chunk, th, Mg, N)
		buf := x.Scratch(min(th, items)*slot + per*r.plane)
		r.sl = slots{buf: buf[:min(th, items)*slot], slot: slot}
		r.xc = buf[min(th, items)*slot:]
		r.transposing = true
		parallel.Run(th, per, r)
		r.transposing = false
		parallel.Run(th, items, r)
		return nil
	}
	if per*((ohw+chunk-1)/chunk) < 2*th {
		want := (2*th + per - 1) / per
		chunk = max(avx.NR, min(chunk, ((ohw+want-1)/want+avx.NR-1)/avx.NR*avx.NR))
	}
	chunk = min(chunk, (ohw+avx.NR-1)/avx.NR*avx.NR)
	r.chunk, r.nch = chunk, (ohw+chunk-1)/chunk
	r.outType = out[0].DType
	if k.p.Pool {
		if g.OH/2 == 0 || g.OW/2 == 0 {
			return nil
		}
		r.prows, r.nch = poolBands(g.OH/2, g.OW, max(chunk, 2*g.OW), per, th)
		r.chunk = 2 * r.prows * g.OW
		chunk = r.chunk
	}
	r.rows = (Mg + avx.MR - 1) / avx.MR * avx.MR
	if r.byChannels(per, ohw, Mg, th) {
		r.rows = ((Mg+th-1)/th + avx.MR - 1) / avx.MR * avx.MR
		r.nrb = (Mg + r.rows - 1) / r.rows
		r.rbMajor = true
	} else {
		for per*r.nch*((Mg+r.rows-1)/r.rows) < 2*th && r.rows >= 4*avx.MR {
			r.rows = (r.rows/2 + avx.MR - 1) / avx.MR * avx.MR
		}
		r.nrb = (Mg + r.rows - 1) / r.rows
		if !k.p.Pool {
			if c := balancedChunk(ohw, chunk, per*r.nrb, th); c != chunk {
				chunk = c
				r.chunk, r.nch = chunk, (ohw+chunk-1)/chunk
			}
		}
	}
	items := per * r.nch * r.nrb
	workers := min(th, items)
	slot := (avx.QBSize(r.K, chunk) + 63) &^ 63
	if k.p.Pool { // the conv tile (rows × chunk codes or floats) after B
		r.bBytes = slot
		slot += (int(r.outType.ByteSize(int64(r.rows*chunk))) + 63) &^ 63
	}
	r.pointwise = k.p.Order == simdQOrder && g.Pointwise() && k.p.Cg%4 == 0
	switch {
	case r.pointwise:
	case k.p.Order == simdQOrder && g.KH*g.KW <= 49:
		r.quadPlanes = true
		r.plane = avx.Cg4(k.p.Cg) * avx.QuadPlaneWords(g.H, g.W)
	case k.p.Order == simdQOrder:
		r.plane = g.H * g.W * avx.Cg4(k.p.Cg)
	case k.p.Order == simdQOrderRows:
		ph, pw := avx.QPadSize(&g)
		r.plane = k.p.Cg * ph * pw
		r.rowsPlan = k.rowsPlan(&g)
	}
	buf := x.Scratch(workers*slot + per*r.plane)
	r.sl = slots{buf: buf[:workers*slot], slot: slot}
	if r.plane > 0 {
		r.xc = buf[workers*slot:]
		r.transposing = true
		r.tparts = 1
		if q := avx.Cg4(k.p.Cg) / 4; r.quadPlanes && per < th && q > 1 { // one image: its quad planes shared out
			r.tparts = min(th, q)
		}
		parallel.Run(th, per*r.tparts, r)
		r.transposing = false
	}
	parallel.Run(th, items, r)
	return nil
}

func (r *simdQConvRun) Do(w, item int) {
	k, g := r.k, &r.g
	if r.transposing { // item: (image, group) or, with tparts > 1, its part
		part := item % max(r.tparts, 1)
		item /= max(r.tparts, 1)
		n, grp := item/r.groups, item%r.groups
		chw := g.C * g.H * g.W
		dst, src := r.xc[item*r.plane:(item+1)*r.plane], r.x[n*chw:(n+1)*chw]
		switch {
		case k.p.Order == simdQOrderRows:
			avx.QPadImage(dst, src, g, grp, k.flip, k.pad)
		case r.quadPlanes && r.tparts > 1:
			q := avx.Cg4(k.p.Cg) / 4
			avx.ToQuadPlanesRange(dst, src, g, grp, k.flip, k.pad, part*q/r.tparts, (part+1)*q/r.tparts)
		case r.quadPlanes:
			avx.ToQuadPlanes(dst, src, g, grp, k.flip, k.pad)
		default:
			avx.ToNHWC(dst, src, g, grp, k.flip, k.pad)
		}
		return
	}
	if r.pooled {
		r.doPooled(w, item)
		return
	}
	var rb, ch int
	if r.rbMajor { // one image and group: row blocks first
		ch, rb, item = item%r.nch, item/r.nch, 0
	} else {
		rb = item % r.nrb
		item /= r.nrb
		ch = item % r.nch
		item /= r.nch
	}
	grp := item % r.groups
	n := item / r.groups
	ohw := g.OH * g.OW
	Mg := k.p.M / k.p.Group
	j0 := ch * r.chunk
	cols := min(r.chunk, ohw-j0)
	pr0, pr := 0, 0 // pooled rows of the block
	if k.p.Pool {
		pr0 = ch * r.prows
		pr = min(r.prows, g.OH/2-pr0)
		j0, cols = 2*pr0*g.OW, 2*pr*g.OW
	}
	i0 := rb * r.rows
	rows := min(r.rows, Mg-i0)
	b := slotAs[uint8](r.sl, w, avx.QBSize(r.K, cols))
	img := n*r.groups + grp
	switch {
	case r.pointwise:
		hw := g.H * g.W
		avx.QPackPointwise(b, r.x[(n*g.C+grp*k.p.Cg)*hw:], hw, k.p.Cg, j0, cols, k.flip)
	case r.quadPlanes:
		avx.QIm2colQuadPlanes(b, r.xc[img*r.plane:(img+1)*r.plane], g, j0, cols, k.pad)
	case k.p.Order == simdQOrder:
		avx.QIm2colNHWC(b, r.xc[img*r.plane:(img+1)*r.plane], g, j0, cols, k.pad)
	case k.p.Order == simdQOrderRows:
		r.rowsPlan.Pack(b, r.xc[img*r.plane:(img+1)*r.plane], j0, cols)
	default:
		chw := g.C * g.H * g.W
		avx.QIm2col(b, r.x[n*chw:(n+1)*chw], g, grp, j0, cols, k.flip, k.pad)
	}
	base := (n*k.p.M + grp*Mg) * ohw
	o := avx.QOut{Ld: ohw}
	switch {
	case k.p.Pool: // written through the tile below
	case r.yf != nil:
		o.F = r.yf[base:]
	default:
		o.Q = r.yq[base:]
	}
	if r.z != nil {
		o.Resid = r.z[base:]
	}
	if r.zq != nil {
		o.ResidQ = r.zq[base:]
	}
	ql := *k.q // per-group channel constants
	ql.Corr, ql.Mult = ql.Corr[grp*Mg:], ql.Mult[grp*Mg:]
	if ql.Bias != nil {
		ql.Bias = ql.Bias[grp*Mg:]
	}
	sz := avx.QASize(Mg, r.K)
	ap := k.w[grp*sz+i0*4*avx.K4(r.K) : (grp+1)*sz]
	if !k.p.Pool {
		avx.QGemm(r.K, ap, rows, b, cols, &o, &ql, i0, j0)
		return
	}
	// The block into the tile (its top left is (0, 0): channel constants
	// start at i0), then pooled into the output.
	tile := r.sl.buf[w*r.sl.slot+r.bBytes : (w+1)*r.sl.slot]
	ql.Corr, ql.Mult = ql.Corr[i0:], ql.Mult[i0:]
	if ql.Bias != nil {
		ql.Bias = ql.Bias[i0:]
	}
	to := avx.QOut{Ld: cols}
	if r.yf != nil {
		to.F = bytesAs[float32](tile, rows*cols)
	} else {
		to.Q = tile[:rows*cols]
	}
	avx.QGemm(r.K, ap, rows, b, cols, &to, &ql, 0, 0)
	phw := (g.OH / 2) * (g.OW / 2)
	pbase := (n*k.p.M + grp*Mg + i0) * phw
	y := r.yq
	if r.yf != nil {
		y = unsafeBytes(r.yf)
	}
	esz := int(r.outType.ByteSize(1))
	convPoolTile(y[(pbase+pr0*(g.OW/2))*esz:], phw, tile, r.outType, rows, cols, g.OW, pr)
}

// byChannels reports whether one image's conv (batch 1, one group) is split
// among th > 1 threads by output channels, th row blocks numbered first
// (kernels/parallel gives worker w the w-th contiguous run of items), each
// core streaming half the weights and packing the whole input, instead of
// by columns, each core streaming all the weights: where the weights have
// at least as many rows as the output has columns (ResNet-50's 14×14 and
// 7×7 layers, whose output planes are also not whole cache lines of codes,
// so column chunks would end inside lines both cores write). SPR device,
// 2 pinned cores: those layers scaled 1.7-2.1x by columns, 1.9-2.4x by
// channels; the 28×28 ones (weights 0.16-0.65 of the columns) lost by
// channels (1.35-1.6x against 1.6-1.9x: both cores pack the whole input).
// Only weights of at least 256 KiB: below, they stay in each core's L2
// anyway and the split only doubles the packing (mobilenetv2's 160→960
// expansions @7×7, 154 KB of weights: 0.050 → 0.059 ms at 2 threads).
func (r *simdQConvRun) byChannels(per, ohw, Mg, th int) bool {
	return per == 1 && th > 1 && !r.k.p.Pool && Mg >= ohw && Mg >= 2*th*avx.MR && Mg*r.K >= 256<<10
}

// balancedChunk picks the column chunk (a multiple of NR, at most chunk)
// that finishes soonest when the items (other per column chunk, in item
// order) are taken by th threads as they free up, as kernels/parallel
// hands them out; work counts columns, so a short last chunk is cheap. A
// few items of unequal widths leave a thread idle: 196 columns (14×14) in
// chunks of 64 are 64/64/64/4, 128 against 68 columns at 2 threads; chunks
// of 32 are 100 against 96. A narrower chunk must finish 3% sooner (each
// chunk re-reads the weights). With one thread, or many items, chunk is kept.
func balancedChunk(n, chunk, other, th int) int {
	if th < 2 || other*((n+chunk-1)/chunk) >= 8*th {
		return chunk
	}
	best, bestSpan := chunk, 0
	for w := chunk; w >= avx.NR; w -= avx.NR {
		var load [8]int
		busy := load[:min(th, len(load))]
		for c := 0; c < n; c += w {
			for range other {
				i := 0 // the thread free first takes the next item
				for j := range busy {
					if busy[j] < busy[i] {
						i = j
					}
				}
				busy[i] += min(w, n-c)
			}
		}
		span := slices.Max(busy)
		if w == chunk || 100*span < 97*bestSpan { // narrower only for a real gain (3%)
			best, bestSpan = w, span
		}
	}
	return best
}
