package cpu

import (
	"fmt"
	"sync/atomic"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kiln"
)

// FP32 convolution on kernels/avx: weights packed at build time in 8-row
// strips, B either im2col'd in 32-column strips (any conv) or read in
// place from the NCHW input (1×1 stride-1 unpadded convs: "direct").
const (
	simdIm2col = "im2col"
	simdDirect = "direct"
)

var simdConvIDs = isaIDs{fam: famF32, ids: [3]string{"cpu.conv.avx512", "cpu.conv.avx2", "cpu.conv.generic"}}

type simdConvParams struct {
	Variant string   `json:"variant"`
	Win     window   `json:"win"`
	M       int      `json:"m"`
	Cg      int      `json:"cg"`
	Group   int      `json:"group"`
	Bias    bool     `json:"bias,omitempty"`
	Resid   bool     `json:"resid,omitempty"`
	Act     actParam `json:"act"`
	Tile    [2]int   `json:"tile"`
	Pool    bool     `json:"pool,omitempty"` // fused 2×2/2 max pool: blocks of row pairs pooled from a cached tile (convpool.go)
}

type simdConvTactic struct{ variant string }

// pointwiseDirect says whether a conv layer is one the direct variant
// takes (1×1, stride 1, unpadded, no fused pool): the builder is then not
// offered im2col, which copies what direct reads in place and was slower
// or even on every measured shape (BenchmarkPointwise: MobileNetV2's and
// ResNet-50's 1×1 convs, planes of 4 KB included), yet won the noisy
// tactic timing on a loaded machine often enough to cost mobilenetv2 ~3%.
func pointwiseDirect(l *engine.Layer, pooled bool) bool {
	w := l.Const[1]
	if pooled || w == nil || len(w.Dims) != 4 || w.Dims[2] != 1 || w.Dims[3] != 1 {
		return false
	}
	win, err := readWindow(l.Node, w.Dims[2:], true)
	return err == nil && win.Strides == [2]int{1, 1} && win.Pads == [4]int{} &&
		(win.AutoPad == "NOTSET" || win.AutoPad == "")
}

func (t simdConvTactic) Name() string {
	return "conv." + simdConvIDs.tag("avx512") + "." + t.variant + ".f32"
}

func (t simdConvTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	w := l.Const[1]
	if w.DType != ir.Float32 || inDType(l, 0) != ir.Float32 {
		return nil, fmt.Errorf("%s: fp32 conv over %s×%s", n, inDType(l, 0), w.DType)
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
	p := simdConvParams{Variant: t.variant, Win: win, M: int(w.Dims[0]), Cg: int(w.Dims[1]), Group: int(group),
		Tile: [2]int{avx.MR, avx.NR}}
	if p.Group < 1 || p.M%p.Group != 0 {
		return nil, fmt.Errorf("%s: %d output channels are not divisible by group %d", n, p.M, group)
	}
	if t.variant == simdDirect && (win.Kernel != [2]int{1, 1} || win.Strides != [2]int{1, 1} || win.Pads != [4]int{} ||
		(win.AutoPad != "NOTSET" && win.AutoPad != "")) {
		return nil, fmt.Errorf("%s: direct needs a 1×1 stride-1 unpadded conv", n)
	}
	if n.Domain == "kiln" {
		a, err := kiln.ActivationOf(n)
		if err != nil {
			return nil, err
		}
		p.Act = actParam(a)
	}
	if p.Pool, err = readPool(n, "f32"); err != nil {
		return nil, err
	}
	if p.Pool && t.variant == simdDirect {
		// The AVX2 variant runs partial strips of an in-place B on the Go
		// twin (no FMA): pooled bands split strips differently from the
		// unfused layer, so only im2col (packed B) stays bit-identical.
		return nil, fmt.Errorf("%s: a fused pool runs on the im2col variant", n)
	}
	K := p.Cg * win.Kernel[0] * win.Kernel[1]
	Mg := p.M / p.Group
	sz := avx.ASize(Mg, K)
	packed := make([]float32, p.Group*sz)
	src := w.F32()
	for g := 0; g < p.Group; g++ {
		avx.PackA(packed[g*sz:(g+1)*sz], src[g*Mg*K:(g+1)*Mg*K], Mg, K, K, 1)
	}
	weights := []*ir.Tensor{ir.FromFloat32s([]int64{int64(len(packed))}, packed)}
	weights, inputs, bias, resid, err := epilogueInputs(l, weights, p.M)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid = bias, resid
	return lowered(simdConvIDs.now(), &p, weights, inputs)
}

type simdConvKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	p        simdConvParams
	w        []float32
	bias     []float32
	epi      avx.Epi // activation part; bias and residual are set per run
	runs     runPool[simdConvRun]
	// im2col run streams of the last geometry (stride-1 convs): made once,
	// then shared by every image and run, and by concurrent contexts.
	plan atomic.Pointer[avx.RunPlan]
}

func init() { registerISA(simdConvIDs, newSimdConvKernel) }

func newSimdConvKernel(p *simdConvParams, w []*ir.Tensor) (engine.Kernel, error) {
	if p.M <= 0 || p.Cg <= 0 || p.Group <= 0 || p.M%p.Group != 0 {
		return nil, fmt.Errorf("%s: bad channel counts", simdConvIDs)
	}
	if p.Tile != [2]int{avx.MR, avx.NR} {
		return nil, fmt.Errorf("%s: weights packed for tile %v, this build uses %dx%d", simdConvIDs, p.Tile, avx.MR, avx.NR)
	}
	if p.Variant != simdIm2col && p.Variant != simdDirect {
		return nil, fmt.Errorf("%s: unknown variant %q", simdConvIDs, p.Variant)
	}
	need := 1
	if p.Bias {
		need = 2
	}
	if len(w) != need || w[0].DType != ir.Float32 {
		return nil, fmt.Errorf("%s: %d weights, want %d float32", simdConvIDs, len(w), need)
	}
	K := p.Cg * p.Win.Kernel[0] * p.Win.Kernel[1]
	k := &simdConvKernel{p: *p, w: w[0].F32(), epi: simdEpi(p.Act.get())}
	if want := p.Group * avx.ASize(p.M/p.Group, K); len(k.w) != want {
		return nil, fmt.Errorf("%s: %d packed weights, want %d", simdConvIDs, len(k.w), want)
	}
	if p.Bias {
		if w[1].DType != ir.Float32 || len(w[1].F32()) != p.M {
			return nil, fmt.Errorf("%s: bias is %s%v, want float32[%d]", simdConvIDs, w[1].DType, w[1].Dims, p.M)
		}
		k.bias = w[1].F32()
	}
	return k, nil
}

func (k *simdConvKernel) geometry(xd []int64) (pack.Conv2D, error) {
	g, err := k.p.Win.geometry(xd, k.p.M, k.p.Group)
	if err != nil {
		return g, err
	}
	if g.C != k.p.Cg*k.p.Group {
		return g, fmt.Errorf("input has %d channels, the weights want %d", g.C, k.p.Cg*k.p.Group)
	}
	if k.p.Variant == simdDirect && !g.Pointwise() {
		return g, fmt.Errorf("direct 1×1 conv over a geometry that needs im2col")
	}
	return g, nil
}

func (k *simdConvKernel) Shapes(in []*ir.Tensor) ([][]int64, error) {
	g, err := k.geometry(in[0].Dims)
	if err != nil {
		return nil, err
	}
	out, err := convOutputDims(in, k.p.M, g, k.p.Resid, k.p.Pool)
	if err != nil {
		return nil, err
	}
	return [][]int64{out}, nil
}

// simdConvRun is one Run's shared state. Items are (image, group, column
// chunk, row block), or (row block, column chunk) when rbMajor: each
// computes a disjoint block of the output with the same arithmetic
// whichever worker runs it.
type simdConvRun struct {
	k                 *simdConvKernel
	g                 pack.Conv2D
	plan              *avx.RunPlan // nil: avx.Im2col finds each strip's runs
	K                 int
	x, z, y           []float32
	sl                slots
	chunk, nch        int
	rows, nrb, groups int
	prows             int // with a fused pool: pooled rows per item (chunk = 2·prows·OW columns)
	bBytes            int // slot bytes before the pooled tile
	// splitImage's forms: chunk c spans columns [colStart(c), colStart(c+1))
	// (even: boundaries at multiples of grain, not of chunk), and items
	// numbered row block first (rbMajor), so that kernels/parallel's spans
	// give each worker its own output channels rather than its own columns.
	even    bool
	grain   int
	rbMajor bool
}

// colStart is the first column of chunk c.
func (r *simdConvRun) colStart(c int) int {
	ohw := r.g.OH * r.g.OW
	if !r.even {
		return min(c*r.chunk, ohw)
	}
	if c >= r.nch {
		return ohw
	}
	return c * ohw / r.nch / r.grain * r.grain
}

// splitImage splits the output of one image (batch 1, one group) among th
// > 1 workers. kernels/parallel gives worker w the w-th contiguous run of
// items, so the split decides which data each core touches:
//   - by columns (pixels), the usual case: about th·k chunks of equal width
//     (multiples of 16 columns where B is read in place, of a strip where
//     it is packed), numbered left to right, so each core computes the
//     same part of the image in every layer and reads the previous layer's
//     output from its own cache; every core streams all the weights;
//   - by output channels where the weights outweigh the columns (Mg > 2·ohw:
//     ResNet-50's 7×7 and 14×14 expansions, whose weights come from DRAM at
//     batch 1), where the columns are too few, or where a plane is not a
//     whole number of cache lines (ohw not a multiple of 16: 14×14, 7×7),
//     so that column chunks would end inside a line in most output
//     channels and both cores would write those lines: th row blocks,
//     each core streaming its share of the weights and reading the whole
//     input (SPR, 2 cores: ~1% off the 2-thread layer sums of both models).
//
// Earlier splits (one shared counter handing items to whichever worker
// asked; rows halved to make items) put both cores on the same columns, so
// both streamed the input and the weights, and nothing a core computed in
// one layer was where it looked in the next. It returns the widest chunk.
func (r *simdConvRun) splitImage(ohw, Mg, chunk, th, minRows int) int {
	r.grain = avx.NR
	if r.k.p.Variant == simdDirect {
		r.grain = 16
	}
	byRows := (Mg > 2*ohw || ohw < 3*th*r.grain || ohw%16 != 0) && Mg >= th*minRows
	if byRows {
		r.rows = ((Mg+th-1)/th + avx.MR - 1) / avx.MR * avx.MR
		r.nrb = (Mg + r.rows - 1) / r.rows
		r.chunk, r.nch = chunk, (ohw+chunk-1)/chunk
		r.rbMajor = true
		return chunk
	}
	r.nrb = 1
	nch := max((ohw+chunk-1)/chunk, th)
	nch = min((nch+th-1)/th*th, max(1, ohw/r.grain)) // no empty chunk
	r.even, r.nch = true, nch
	widest := 0
	for c := 0; c < nch; c++ {
		widest = max(widest, r.colStart(c+1)-r.colStart(c))
	}
	r.chunk = widest
	return widest
}

// splitItems is the split for several images or groups, or one thread.
func (r *simdConvRun) splitItems(ohw, Mg, chunk, per, th, minRows int) int {
	k, g := r.k, &r.g
	// Too few items for the threads (small outputs at batch 1): row blocks
	// (multiples of MR) first, which keep whole column strips, down to 4
	// strips when each item packs its own B (im2col), 2 when B is read in
	// place; then narrower column chunks or pooled bands, which leave
	// partial strips (simplecnn conv2 at 2 threads: 5 bands of 22 columns,
	// a third of the FMAs on padding, one thread doing 3 of them).
	for th > 1 && per*r.nch*((Mg+r.rows-1)/r.rows) < 2*th && r.rows/2 >= minRows {
		r.rows = (r.rows/2 + avx.MR - 1) / avx.MR * avx.MR
	}
	r.nrb = (Mg + r.rows - 1) / r.rows
	if th > 1 && per*r.nrb*r.nch < 2*th {
		if k.p.Pool {
			r.prows, r.nch = poolBands(g.OH/2, g.OW, max(chunk, 2*g.OW), per*r.nrb, th)
		} else {
			want := (2*th + per*r.nrb - 1) / (per * r.nrb)
			chunk = max(avx.NR, min(chunk, ((ohw+want-1)/want+avx.NR-1)/avx.NR*avx.NR))
			r.chunk, r.nch = chunk, (ohw+chunk-1)/chunk
		}
	}
	if k.p.Pool {
		r.chunk = 2 * r.prows * g.OW
		chunk = r.chunk
	} else if c, n := evenChunks(ohw, r.nch, per*r.nrb, th); c > 0 {
		chunk = c
		r.chunk, r.nch = c, n
	} else if items := per * r.nch * r.nrb; th > 1 && items%th != 0 && items < 8*th && r.rows/2 >= minRows &&
		(2*items)%th == 0 {
		// no even column split (28×28 = 784 columns in 160-wide chunks is
		// 5): halve the row blocks instead (10 items)
		r.rows = (r.rows/2 + avx.MR - 1) / avx.MR * avx.MR
		r.nrb = (Mg + r.rows - 1) / r.rows
	}
	return chunk
}

func (k *simdConvKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
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
	*r = simdConvRun{k: k, g: g, K: g.K(), x: in[0].F32(), y: out[0].F32(), groups: k.p.Group}
	if k.p.Resid {
		r.z = in[1].F32()
	}
	if k.p.Variant == simdIm2col {
		if p := k.plan.Load(); p.Fits(&g) {
			r.plan = p
		} else if p = avx.NewRunPlan(&g); p != nil {
			k.plan.Store(p)
			r.plan = p
		}
	}
	Mg := k.p.M / k.p.Group
	th := simdThreads(x.Threads, N*k.p.M*ohw*g.K()/k.p.Group)
	// Column chunks whose packed B block (KC×chunk) stays in L2.
	chunk := max(avx.NR, (128<<10)/(4*max(min(r.K, avx.KC), 1))/avx.NR*avx.NR)
	chunk = min(chunk, (ohw+avx.NR-1)/avx.NR*avx.NR)
	per := N * k.p.Group
	r.chunk, r.nch = chunk, (ohw+chunk-1)/chunk
	if k.p.Pool {
		if g.OH/2 == 0 || g.OW/2 == 0 {
			return nil
		}
		r.prows, r.nch = poolBands(g.OH/2, g.OW, max(chunk, 2*g.OW), per, 1)
	}
	r.rows = (Mg + avx.MR - 1) / avx.MR * avx.MR
	minRows := 4 * avx.MR
	if k.p.Variant == simdDirect {
		minRows = 2 * avx.MR
	}
	if th > 1 && per == 1 && !k.p.Pool {
		chunk = r.splitImage(ohw, Mg, chunk, th, minRows)
	} else {
		chunk = r.splitItems(ohw, Mg, chunk, per, th, minRows)
	}
	items := per * r.nch * r.nrb
	workers := min(th, items)
	slot := 64
	if k.p.Variant == simdIm2col {
		slot = 4 * avx.BSize(r.K, chunk)
	}
	if k.p.Pool { // the conv tile (rows × chunk) after B
		r.bBytes = (slot + 63) &^ 63
		slot = r.bBytes + 4*r.rows*chunk
	}
	r.sl = newSlots(x, workers, slot)
	parallel.Run(th, items, r)
	return nil
}

func (r *simdConvRun) Do(w, item int) {
	k, g := r.k, &r.g
	var rb, ch int
	if r.rbMajor {
		ch = item % r.nch
		item /= r.nch
		rb = item % r.nrb
		item /= r.nrb
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
	j0 := r.colStart(ch)
	cols := r.colStart(ch+1) - j0
	pr0, pr := 0, 0 // pooled rows of the block
	if k.p.Pool {
		pr0 = ch * r.prows
		pr = min(r.prows, g.OH/2-pr0)
		j0, cols = 2*pr0*g.OW, 2*pr*g.OW
	}
	i0 := rb * r.rows
	rows := min(r.rows, Mg-i0)
	xi := r.x[n*g.C*g.H*g.W : (n+1)*g.C*g.H*g.W]
	var b []float32
	ldb := 0
	if k.p.Variant == simdDirect {
		cg := g.C / g.Group
		b, ldb = xi[grp*cg*ohw+j0:], ohw
	} else {
		b = slotAs[float32](r.sl, w, avx.BSize(r.K, cols))
		if r.plan != nil && j0%avx.NR == 0 { // pooled bands may start inside a strip
			avx.Im2colPlanned(b, xi, r.plan, grp, j0, cols)
		} else {
			avx.Im2col(b, xi, g, grp, j0, cols)
		}
	}
	e := k.epi
	base := (n*k.p.M + grp*Mg) * ohw // output block of (image, group)
	if k.bias != nil {
		e.Bias, e.BiasOn = k.bias[grp*Mg:], avx.FlagBiasRow
	}
	if r.z != nil {
		e.Resid = r.z[base:]
	}
	sz := avx.ASize(Mg, r.K)
	ap := k.w[grp*sz+i0*r.K : (grp+1)*sz]
	if !k.p.Pool {
		avx.Gemm(r.K, ap, rows, b, ldb, cols, r.y[base+i0*ohw+j0:], ohw, &e, i0, j0)
		return
	}
	slot := r.sl.buf[w*r.sl.slot : (w+1)*r.sl.slot]
	tile := bytesAs[float32](slot[r.bBytes:], rows*cols)
	avx.Gemm(r.K, ap, rows, b, ldb, cols, tile, cols, &e, i0, j0)
	phw := (g.OH / 2) * (g.OW / 2)
	pbase := (n*k.p.M + grp*Mg + i0) * phw
	convPoolTile(unsafeBytes(r.y[pbase+pr0*(g.OW/2):]), phw, unsafeBytes(tile), ir.Float32, rows, cols, g.OW, pr)
}

// evenChunks narrows nch column chunks of n columns (widths multiples of
// NR) so that items = other·chunks divide evenly among th > 1 threads,
// when they are few (< 8 per thread) and do not: otherwise one thread idles
// at the end of the layer (the MobileNetV2 stem at 2 threads: 11 column
// chunks, 6 against 5). It returns chunk = 0 when no count up to 2·nch
// fits.
func evenChunks(n, nch, other, th int) (chunk, chunks int) {
	if th < 2 || (other*nch)%th == 0 || other*nch >= 8*th {
		return 0, 0
	}
	for c := nch + 1; c <= 2*nch; c++ {
		if (other*c)%th != 0 {
			continue
		}
		if w := ((n+c-1)/c + avx.NR - 1) / avx.NR * avx.NR; (n+w-1)/w == c {
			return w, c
		}
	}
	return 0, 0
}
