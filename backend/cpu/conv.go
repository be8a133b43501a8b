package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/kernels/i8"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// Conv variants (tactics).
const (
	convIm2col    = "im2col" // im2col packed straight from NCHW + packed GEMM (1×1 stride-1 convs pack a plain copy)
	convDepthwise = "depthwise"
)

// convParams is the plan encoding of a conv step.
type convParams struct {
	Variant string      `json:"variant"`
	Prec    string      `json:"prec"` // f32, i8 or f8
	Win     window      `json:"win"`
	M       int         `json:"m"`
	Cg      int         `json:"cg"`
	Group   int         `json:"group"`
	Bias    bool        `json:"bias,omitempty"`
	Resid   bool        `json:"resid,omitempty"`
	ZType   ir.DType    `json:"ztype,omitempty"` // the residual's type: float32/float16, or codes (z_scale > 0)
	Act     actParam    `json:"act"`
	Quant   *quantParam `json:"quant,omitempty"`
	XType   ir.DType    `json:"xtype"`
	Tile    [2]int      `json:"tile"`           // MR, NR the weights were packed for
	Pool    bool        `json:"pool,omitempty"` // fused 2×2/2 max pool of the output (convpool.go)
}

type convTactic struct{ variant, prec string }

func (t convTactic) Name() string { return "conv." + t.variant + "." + t.prec }

func convTactics(l *engine.Layer, prec string) []engine.Tactic {
	if !isConst(l, 1) || len(l.Const[1].Dims) != 4 {
		return nil
	}
	wd := l.Const[1].Dims
	group, _ := l.Node.AttrInt("group", 1)
	var ts []engine.Tactic
	if (prec == "f32" || prec == "f16" || prec == "i8") && wd[1] == 1 && group > 1 && wd[0]%group == 0 {
		ts = append(ts, convTactic{convDepthwise, prec})
	}
	return append(ts, convTactic{convIm2col, prec})
}

func (t convTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	w := l.Const[1]
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
	M, Cg := int(w.Dims[0]), int(w.Dims[1])
	if group < 1 || M%int(group) != 0 {
		return nil, fmt.Errorf("%s: %d output channels are not divisible by group %d", n, M, group)
	}
	p := convParams{Variant: t.variant, Prec: t.prec, Win: win, M: M, Cg: Cg, Group: int(group), XType: inDType(l, 0)}
	if p.Pool, err = readPool(n, t.prec); err != nil {
		return nil, err
	}
	var weights []*ir.Tensor
	K := Cg * win.Kernel[0] * win.Kernel[1]
	Mg := M / p.Group
	switch t.prec {
	case "f32", "f16":
		wantT := ir.Float32
		if t.prec == "f16" {
			wantT = ir.Float16
		}
		if w.DType != wantT || p.XType != wantT {
			return nil, fmt.Errorf("%s: %s conv over %s×%s", n, t.prec, p.XType, w.DType)
		}
		wf := floats(w)
		p.Tile = [2]int{f32.MR, f32.NR}
		if t.variant == convDepthwise {
			weights = append(weights, ir.FromFloat32s(w.Dims, wf))
		} else {
			weights = append(weights, ir.FromFloat32s([]int64{int64(p.Group * pack.ASize(Mg, K, f32.MR))}, packGroups(wf, p.Group, Mg, K, f32.MR)))
		}
		if n.Domain == "kiln" {
			a, err := kiln.ActivationOf(n)
			if err != nil {
				return nil, err
			}
			p.Act = actParam(a)
		}
	case "i8", "f8":
		ql, err := kilnq.ParseLayer(n, p.XType)
		if err != nil {
			return nil, err
		}
		p.Quant = &quantParam{*ql}
		if len(p.Quant.WScales) != 1 && len(p.Quant.WScales) != M {
			return nil, fmt.Errorf("%s: w_scales has %d entries for %d output channels", n, len(p.Quant.WScales), M)
		}
		p.Act = actParam(p.Quant.Act)
		if t.prec == "i8" {
			if w.DType != ir.Int8 || (p.XType != ir.Int8 && p.XType != ir.Uint8) {
				return nil, fmt.Errorf("%s: int8 conv over %s×%s", n, p.XType, w.DType)
			}
			if K > i8.MaxK {
				return nil, fmt.Errorf("%s: depth %d could overflow int32 accumulators", n, K)
			}
			p.Tile = [2]int{i8.MR, i8.NR}
			if t.variant == convDepthwise {
				weights = append(weights, w.Clone())
			} else {
				wq := ir.NewTensor(ir.Int8, []int64{int64(p.Group * pack.ASize(Mg, K, i8.MR))})
				packGroupsTo(wq.I8(), w.I8(), p.Group, Mg, K, i8.MR)
				weights = append(weights, wq)
			}
		} else {
			if !isFP8(w.DType) || !isFP8(p.XType) {
				return nil, fmt.Errorf("%s: fp8 conv over %s×%s", n, p.XType, w.DType)
			}
			p.Tile = [2]int{f32.MR, f32.NR}
			dec := decodeFP8(w)
			weights = append(weights, ir.FromFloat32s([]int64{int64(p.Group * pack.ASize(Mg, K, f32.MR))}, packGroups(dec, p.Group, Mg, K, f32.MR)))
		}
	}
	floatT := ir.Float32
	if t.prec == "f16" {
		floatT = ir.Float16
	}
	if hasInput(n, 2) {
		if !isConst(l, 2) || l.Const[2].DType != floatT || l.Const[2].Len() != int64(M) {
			return nil, fmt.Errorf("%s: the bias must be a constant %s[%d]", n, floatT, M)
		}
		p.Bias = true
		weights = append(weights, ir.FromFloat32s([]int64{int64(M)}, floats(l.Const[2])))
	}
	inputs := []int{0}
	if hasInput(n, 3) {
		zt, err := portableResidual(l, p.Quant, floatT)
		if err != nil {
			return nil, err
		}
		p.Resid, p.ZType = true, zt
		inputs = append(inputs, 3)
	} else if p.Quant != nil && p.Quant.ZScale != 0 {
		return nil, fmt.Errorf("%s: z_scale without a residual input", n)
	}
	if len(n.Inputs) > 4 {
		return nil, fmt.Errorf("%s: too many inputs", n)
	}
	return lowered("cpu.conv", &p, weights, inputs)
}

func packGroups(w []float32, groups, mg, k, mr int) []float32 {
	dst := make([]float32, groups*pack.ASize(mg, k, mr))
	packGroupsTo(dst, w, groups, mg, k, mr)
	return dst
}

func packGroupsTo[T int8 | float32](dst, w []T, groups, mg, k, mr int) {
	sz := pack.ASize(mg, k, mr)
	for g := 0; g < groups; g++ {
		pack.A(dst[g*sz:(g+1)*sz], w[g*mg*k:(g+1)*mg*k], (*[256]T)(nil), mg, k, k, 1, mr)
	}
}

type convKernel struct {
	p     convParams
	w32   []float32
	w8    []int8
	bias  []float32
	lut16 *[256]int16
	lut32 *[256]float32
	ztab  *[256]float32 // residual codes' values (z_scale > 0)
	runs  runPool[convRun]
	full  fullOutputs // unpooled outputs with a fused pool
}

func init() { register("cpu.conv", newConvKernel) }

func newConvKernel(p *convParams, w []*ir.Tensor) (engine.Kernel, error) {
	k := &convKernel{p: *p}
	if p.M <= 0 || p.Cg <= 0 || p.Group <= 0 || p.M%p.Group != 0 {
		return nil, fmt.Errorf("cpu.conv: bad channel counts")
	}
	K := p.Cg * p.Win.Kernel[0] * p.Win.Kernel[1]
	Mg := p.M / p.Group
	need := 1
	if p.Bias {
		need = 2
	}
	if len(w) != need {
		return nil, fmt.Errorf("cpu.conv: %d weights, want %d", len(w), need)
	}
	switch p.Prec {
	case "f32", "f8", "f16":
		if w[0].DType != ir.Float32 {
			return nil, fmt.Errorf("cpu.conv: packed weights are %s", w[0].DType)
		}
		k.w32 = w[0].F32()
		want := p.Group * pack.ASize(Mg, K, f32.MR)
		if p.Variant == convDepthwise {
			want = p.M * K
		} else if p.Tile != [2]int{f32.MR, f32.NR} {
			return nil, fmt.Errorf("cpu.conv: weights packed for tile %v, this build uses %dx%d", p.Tile, f32.MR, f32.NR)
		}
		if len(k.w32) != want {
			return nil, fmt.Errorf("cpu.conv: %d packed weights, want %d", len(k.w32), want)
		}
		if p.Prec == "f8" {
			if k.lut32 = fp8Table(p.XType); k.lut32 == nil {
				return nil, fmt.Errorf("cpu.conv: fp8 activations of type %s", p.XType)
			}
		}
	case "i8":
		if w[0].DType != ir.Int8 || p.Tile != [2]int{i8.MR, i8.NR} {
			return nil, fmt.Errorf("cpu.conv: int8 weights packed as %s for tile %v", w[0].DType, p.Tile)
		}
		k.w8 = w[0].I8()
		want := p.Group * pack.ASize(Mg, K, i8.MR)
		if p.Variant == convDepthwise {
			want = p.M * K
		}
		if len(k.w8) != want {
			return nil, fmt.Errorf("cpu.conv: %d packed weights, want %d", len(k.w8), want)
		}
		if p.Quant == nil {
			return nil, fmt.Errorf("cpu.conv: int8 conv without quantization parameters")
		}
		k.lut16 = i8.CodeTable(p.XType == ir.Uint8, p.Quant.XZero)
	default:
		return nil, fmt.Errorf("cpu.conv: unknown precision %q", p.Prec)
	}
	if (p.Prec == "i8" || p.Prec == "f8") && p.Quant == nil {
		return nil, fmt.Errorf("cpu.conv: quantized conv without quantization parameters")
	}
	if p.Bias {
		if w[1].DType != ir.Float32 || len(w[1].F32()) != p.M {
			return nil, fmt.Errorf("cpu.conv: bias is %s%v, want float32[%d]", w[1].DType, w[1].Dims, p.M)
		}
		k.bias = w[1].F32()
	}
	var err error
	if k.ztab, err = portableResidualTable("cpu.conv", p.Quant, p.Resid, p.ZType); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *convKernel) geometry(xd []int64) (pack.Conv2D, error) {
	g, err := k.p.Win.geometry(xd, k.p.M, k.p.Group)
	if err != nil {
		return g, err
	}
	if g.C != k.p.Cg*k.p.Group {
		return g, fmt.Errorf("input has %d channels, the weights want %d", g.C, k.p.Cg*k.p.Group)
	}
	return g, nil
}

func (k *convKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return nil, err
	}
	out, err := convOutputDims(in, k.p.M, g, k.p.Resid, k.p.Pool)
	if err != nil {
		return nil, err
	}
	if k.p.Resid && k.p.ZType != ir.Undefined {
		if err := checkResidualType(in, k.p.ZType); err != nil {
			return nil, err
		}
	}
	return [][]int64{out}, nil
}

// convRun is one Run's shared state; items are (image, group, column
// chunk) for GEMM variants and (image, channel) planes for depthwise.
type convRun struct {
	k      *convKernel
	g      pack.Conv2D
	depth  int // GEMM depth
	x32    []float32
	x8     []byte
	z, y32 []float32
	y8     []byte
	y16    []uint16
	sl     slots
	chunk  int
	nch    int
}

func (k *convKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	if !k.p.Pool {
		return k.run(x, in, out[0])
	}
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return err
	}
	// The whole conv output into a reused buffer, then pooled.
	N, dt := int(in[0].Dims[0]), out[0].DType
	if N*k.p.M*g.OH*g.OW == 0 {
		return nil
	}
	full := k.full.get(dt, N, k.p.M, g.OH, g.OW)
	defer k.full.put(full)
	if err := k.run(x, in, &full.t); err != nil {
		return err
	}
	poolPlanes(out[0].Data, full.t.Data, dt, g.OW, g.OH, N*k.p.M)
	return nil
}

// run computes the unpooled output y.
func (k *convKernel) run(x *engine.Exec, in []*ir.Tensor, y *ir.Tensor) error {
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return err
	}
	N := int(in[0].Dims[0])
	r := k.runs.get()
	defer k.runs.put(r)
	*r = convRun{k: k, g: g, depth: g.K()}
	switch {
	case k.p.Prec == "f32":
		r.x32 = in[0].F32()
	case k.p.Prec != "f16":
		r.x8 = in[0].Data
	}
	if k.p.Resid && k.p.Prec != "f16" && k.ztab == nil {
		r.z = in[1].F32()
	}
	switch y.DType {
	case ir.Float32:
		r.y32 = y.F32()
	case ir.Float16:
		r.y16 = y.U16()
	default:
		r.y8 = y.Data
	}
	ohw := g.OH * g.OW
	if N == 0 || ohw == 0 || k.p.M == 0 {
		return nil
	}
	var items, slot int
	if k.p.Variant == convDepthwise {
		items, slot = N*k.p.M, 8*g.OW // float32 row (+ int32 sums for int8)
	} else {
		nr, esize := f32.NR, 4
		if k.p.Prec == "i8" {
			nr, esize = i8.NR, 2
		}
		// Column chunks whose packed B stays in L2 (~128 KiB), split finer
		// when there are too few items to keep every thread busy.
		chunk := max(nr, (128<<10)/(esize*max(r.depth, 1))/nr*nr)
		if per := N * k.p.Group; per*((ohw+chunk-1)/chunk) < 2*x.Threads {
			want := (2*x.Threads + per - 1) / per
			chunk = max(nr, min(chunk, ((ohw+want-1)/want+nr-1)/nr*nr))
		}
		chunk = min(chunk, (ohw+nr-1)/nr*nr)
		r.chunk, r.nch = chunk, (ohw+chunk-1)/chunk
		items = N * k.p.Group * r.nch
		slot = esize * pack.BSize(r.depth, chunk, nr)
		if k.p.Prec == "i8" {
			slot = i8SlotBytes(r.depth, chunk)
		}
	}
	workers := min(x.Threads, items)
	if k.ztab != nil { // residual codes: their values first
		var prefix []byte
		prefix, r.sl = newSlotsPrefix(x, 4*len(in[1].Data), workers, slot)
		r.z = decodeResidual(in[1], k.ztab, prefix)
		run(x, items, r)
		return nil
	}
	if k.p.Prec != "f16" {
		r.sl = newSlots(x, workers, slot)
		run(x, items, r)
		return nil
	}
	// FP16: float32 copies of the input and residual, float32 math, one
	// rounding to float16 at the store.
	nx, nz := len(in[0].Data)/2, 0
	if k.p.Resid {
		nz = len(in[1].Data) / 2
	}
	var prefix []byte
	prefix, r.sl = newSlotsPrefix(x, 4*(nx+nz), workers, slot)
	r.x32 = bytesAs[float32](prefix, nx)
	halfToFloat(r.x32, in[0].U16())
	if k.p.Resid {
		r.z = bytesAs[float32](prefix[4*nx:], nz)
		halfToFloat(r.z, in[1].U16())
	}
	run(x, items, r)
	return nil
}

func (r *convRun) epilogue(n int) f32.Epilogue {
	k, g := r.k, &r.g
	ohw := g.OH * g.OW
	lo, hi := n*k.p.M*ohw, (n+1)*k.p.M*ohw
	e := f32.Epilogue{RS: ohw, CS: 1, Act: k.p.Act.get(), Q: k.p.Quant.layer(), QChannelRow: true}
	switch {
	case r.y32 != nil:
		e.Out = r.y32[lo:hi]
	case r.y16 != nil:
		e.Out16 = r.y16[lo:hi]
	default:
		e.QOut = r.y8[lo:hi]
	}
	if r.z != nil {
		e.Resid = r.z[lo:hi]
	}
	if k.bias != nil {
		e.Bias, e.BiasMode = k.bias, f32.BiasRow
	}
	return e
}

func (r *convRun) Do(w, item int) {
	k, g := r.k, &r.g
	hw := g.C * g.H * g.W
	if k.p.Variant == convDepthwise {
		n, oc := item/k.p.M, item%k.p.M
		e := r.epilogue(n)
		ic := oc / (k.p.M / k.p.Group)
		kk := g.KH * g.KW
		plane := g.H * g.W
		if k.p.Prec == "i8" {
			buf := slotAs[float32](r.sl, w, 2*g.OW)
			i8.DepthwisePlane(r.x8[n*hw+ic*plane:n*hw+(ic+1)*plane], k.lut16, k.w8[oc*kk:(oc+1)*kk], g, oc,
				bytesAs[int32](unsafeBytes(buf[g.OW:]), g.OW), buf[:g.OW], &e)
			return
		}
		f32.DepthwisePlane(r.x32[n*hw+ic*plane:n*hw+(ic+1)*plane], k.w32[oc*kk:(oc+1)*kk], g, oc, slotAs[float32](r.sl, w, g.OW), &e)
		return
	}
	ch := item % r.nch
	grp := (item / r.nch) % k.p.Group
	n := item / (r.nch * k.p.Group)
	ohw := g.OH * g.OW
	j0 := ch * r.chunk
	cols := min(r.chunk, ohw-j0)
	Mg := k.p.M / k.p.Group
	e := r.epilogue(n)
	switch k.p.Prec {
	case "f32", "f8", "f16":
		bp := slotAs[float32](r.sl, w, pack.BSize(r.depth, cols, f32.NR))
		if k.p.Prec != "f8" {
			pack.Im2col(bp, r.x32[n*hw:(n+1)*hw], (*[256]float32)(nil), g, grp, j0, cols, f32.NR)
		} else {
			pack.Im2col(bp, r.x8[n*hw:(n+1)*hw], k.lut32, g, grp, j0, cols, f32.NR)
		}
		sz := pack.ASize(Mg, r.depth, f32.MR)
		f32.Gemm(r.depth, k.w32[grp*sz:(grp+1)*sz], Mg, bp, cols, grp*Mg, j0, &e)
	case "i8":
		bp, pairs := i8Slot(r.sl, w, r.depth, cols)
		pack.Im2col(bp, r.x8[n*hw:(n+1)*hw], k.lut16, g, grp, j0, cols, i8.NR)
		sz := pack.ASize(Mg, r.depth, i8.MR)
		i8.Gemm(r.depth, k.w8[grp*sz:(grp+1)*sz], Mg, bp, cols, grp*Mg, j0, &e, pairs)
	}
}

func sameDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
