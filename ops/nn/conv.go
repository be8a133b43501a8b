package nn

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Conv", MinOpset: 1, Run: conv, Infer: inferConv})
}

// convParams validates X and W dims (-1 where unknown) and resolves the
// window geometry. It returns the geometry and the group count.
func convParams(a attrGetter, xd, wd []int64) (*geom, int64, error) {
	if len(xd) < 3 {
		return nil, 0, a.Errorf("X has rank %d, want at least 3 (N, C, spatial...)", len(xd))
	}
	if len(wd) != len(xd) {
		return nil, 0, a.Errorf("W has rank %d, want %d like X", len(wd), len(xd))
	}
	r := len(xd) - 2
	group := a.Int("group", 1)
	ks := a.Ints("kernel_shape", nil)
	if err := a.Err(); err != nil {
		return nil, 0, err
	}
	if group < 1 {
		return nil, 0, a.Errorf("group %d must be at least 1", group)
	}
	kernel := append([]int64(nil), wd[2:]...)
	if ks != nil {
		if len(ks) != r {
			return nil, 0, a.Errorf("kernel_shape %v: want %d values", ks, r)
		}
		for i, k := range ks {
			if kernel[i] >= 0 && kernel[i] != k {
				return nil, 0, a.Errorf("kernel_shape %v does not match W dims %v", ks, wd)
			}
			kernel[i] = k
		}
	}
	for _, k := range kernel {
		if k < 0 { // unknown kernel: only possible at inference time
			g := &geom{out: make([]int64, r)}
			for i := range g.out {
				g.out[i] = -1
			}
			return g, group, nil
		}
	}
	if c, cg := xd[1], wd[1]; c >= 0 && cg >= 0 && c != cg*group {
		return nil, 0, a.Errorf("X has %d channels but W expects %d per group × %d groups", c, cg, group)
	}
	if m := wd[0]; m >= 0 && m%group != 0 {
		return nil, 0, a.Errorf("W has %d output channels, not divisible by group %d", m, group)
	}
	g, err := newGeom(a, xd[2:], kernel, false, true)
	return g, group, err
}

func inferConv(c *ops.InferCtx) error {
	x, err := c.Input(0)
	if err != nil {
		return err
	}
	w, err := c.Input(1)
	if err != nil {
		return err
	}
	if !x.HasShape || !w.HasShape {
		c.Out[0] = &ir.Type{DType: x.DType}
		return nil
	}
	g, _, err := convParams(c, dimsOf(x.Shape), dimsOf(w.Shape))
	if err != nil {
		return err
	}
	out := ir.Shape{x.Shape[0], w.Shape[0]}
	for _, o := range g.out {
		out = append(out, knownOrUnknown(o))
	}
	c.Out[0] = ir.TensorType(x.DType, out)
	return nil
}

func conv(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	w, err := needFloat(c, in, 1, "W")
	if err != nil {
		return nil, err
	}
	if w.DType != x.DType {
		return nil, c.Errorf("X is %s but W is %s", x.DType, w.DType)
	}
	g, group, err := convParams(c, x.Dims, w.Dims)
	if err != nil {
		return nil, err
	}
	N, C, M := x.Dims[0], x.Dims[1], w.Dims[0]
	b := opt(in, 2)
	if b != nil && (b.Rank() != 1 || b.Dims[0] != M) {
		return nil, c.Errorf("B has dims %v, want [%d]", b.Dims, M)
	}
	outDims := append([]int64{N, M}, g.out...)
	if err := checkSize(c, outDims); err != nil {
		return nil, err
	}
	Cg, Mg := C/group, M/group
	inSz, outSz, kSz := prod(g.in), prod(g.out), prod(g.kernel)
	if err := checkWork(c, N, M, Cg, outSz, kSz); err != nil {
		return nil, err
	}
	xs, ws, bs := floats(x), floats(w), floats(b)
	y := make([]float64, N*M*outSz)
	taps := buildTaps(g.out, g.in, g.kernel, g.stride, g.dil, g.padB)
	s := g.stride[g.rank()-1]
	// Output planes are independent: spread (image, block of up to four
	// output channels of one group) over cores. A block reads each input
	// row once for all its channels.
	type block struct{ oc, n int64 }
	var blocks []block
	for gi := int64(0); gi < group; gi++ {
		for m := int64(0); m < Mg; m += 4 {
			blocks = append(blocks, block{gi*Mg + m, min(4, Mg-m)})
		}
	}
	nb := int64(len(blocks))
	parallelFor(N*nb, func(p int64) {
		n, bk := p/nb, blocks[p%nb]
		var yp, wp [4][]float64
		for j := int64(0); j < bk.n; j++ {
			oc := bk.oc + j
			yp[j] = y[(n*M+oc)*outSz:][:outSz]
			if bs != nil {
				for i := range yp[j] {
					yp[j][i] = bs[oc]
				}
			}
		}
		gi := bk.oc / Mg
		for ic := int64(0); ic < Cg; ic++ {
			xp := xs[(n*C+gi*Cg+ic)*inSz:][:inSz]
			for j := int64(0); j < bk.n; j++ {
				wp[j] = ws[((bk.oc+j)*Cg+ic)*kSz:][:kSz]
			}
			if bk.n == 4 {
				gatherTaps4(&yp, xp, &wp, taps, s)
				continue
			}
			for j := int64(0); j < bk.n; j++ {
				gatherTaps(yp[j], xp, wp[j], taps, s)
			}
		}
	})
	return []*ir.Tensor{fromFloats(x.DType, outDims, y)}, nil
}

// parallelFor runs f(0..n-1) on up to GOMAXPROCS goroutines. Each index
// must write disjoint memory, so results do not depend on scheduling.
func parallelFor(n int64, f func(i int64)) {
	workers := int64(runtime.GOMAXPROCS(0))
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		for i := int64(0); i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value // a worker's panic, re-raised in the caller where the executor recovers it
	for w := int64(0); w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					failed.CompareAndSwap(nil, fmt.Sprint(r))
					next.Store(n) // stop the others early
				}
			}()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
	if r := failed.Load(); r != nil {
		panic(r)
	}
}
