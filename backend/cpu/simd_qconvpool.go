package cpu

import (
	"sync/atomic"

	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
)

// cpu.conv.vnni with a fused 2×2 max pool, pooled in registers
// (avx.QGemmPool): the im2col columns of an item are whole pooled groups
// (each window's four conv outputs side by side), the micro-kernel keeps
// the maximum accumulator of each window and requantizes only that, and
// the codes go straight into the pooled output. Compared with the tile path
// (convpool.go: every conv output requantized into a tile, then pooled),
// the epilogue runs on a quarter of the outputs at half the vector width,
// and the tile stores and the pool pass are gone. Bit-identical, since the
// epilogue is non-decreasing in the accumulator (avx.QPoolable says when);
// layers it does not cover, and depth orders without a pooled packer, keep
// the tile path.

// poolInRegisters reports whether the kernel's pooled conv takes this path:
// a monotone epilogue and a depth order with a pooled packer (row quads, or
// channels-last quads of kernels up to 7×7, kept as quad planes).
func (k *simdQConvKernel) poolInRegisters() bool {
	if !k.p.Pool || !k.poolable {
		return false
	}
	switch k.p.Order {
	case simdQOrderRows:
		return k.p.Cg*k.p.Win.Kernel[0] <= 49
	case simdQOrder:
		return k.p.Win.Kernel[0]*k.p.Win.Kernel[1] <= 49
	}
	return false
}

// poolPlan is the kernel's packing plan for geometry g (the last one made,
// shared by concurrent runs: plans are immutable).
type poolPlan struct{ p atomic.Pointer[avx.QPoolPlan] }

func (c *poolPlan) get(g *pack.Conv2D, rows bool) *avx.QPoolPlan {
	if p := c.p.Load(); p != nil && p.Matches(g, rows) {
		return p
	}
	p := avx.NewQPoolPlan(g, rows)
	c.p.Store(p)
	return p
}

// setupPooled sizes a pooled run's items (image, group, band of pooled
// groups, row block) and its copies of the input (quad planes or padded
// row images) for per group images; it returns the item count and the B slot's bytes.
func (r *simdQConvRun) setupPooled(chunk, th, Mg, per int) (items, slot int) {
	k, g := r.k, &r.g
	r.phw = (g.OH / 2) * (g.OW / 2)
	groups := (r.phw + avx.PoolGroup - 1) / avx.PoolGroup
	pg := max(1, min(groups, chunk/avx.NR)) // pooled groups per band
	if per*((groups+pg-1)/pg) < 2*th {
		want := (2*th + per - 1) / per
		pg = max(1, min(pg, (groups+want-1)/want))
	}
	r.pb, r.nch = pg*avx.PoolGroup, (groups+pg-1)/pg
	r.rows = (Mg + avx.MR - 1) / avx.MR * avx.MR
	for per*r.nch*((Mg+r.rows-1)/r.rows) < 2*th && r.rows >= 4*avx.MR {
		r.rows = (r.rows/2 + avx.MR - 1) / avx.MR * avx.MR
	}
	r.nrb = (Mg + r.rows - 1) / r.rows
	r.plan = k.plans.get(g, k.p.Order == simdQOrderRows)
	if k.p.Order == simdQOrderRows {
		ph, pw := avx.QPadSize(g)
		r.plane = k.p.Cg * ph * pw
	} else {
		r.quadPlanes = true
		r.plane = avx.Cg4(k.p.Cg) * avx.QuadPlaneWords(g.H, g.W)
	}
	return per * r.nch * r.nrb, (avx.QBSize(r.K, 4*r.pb) + 63) &^ 63
}

// doPooled computes one item of a pooled run: pooled outputs [p0, p0+np)
// of rows [i0, i0+rows) of a group image.
func (r *simdQConvRun) doPooled(w, n, grp, ch, i0, rows int) {
	k := r.k
	Mg := k.p.M / k.p.Group
	p0 := ch * r.pb
	np := min(r.pb, r.phw-p0)
	img := n*r.groups + grp
	b := slotAs[uint8](r.sl, w, avx.QBSize(r.K, 4*np))
	xc := r.xc[img*r.plane : (img+1)*r.plane]
	r.plan.Pack(b, xc, p0, np, k.pad)
	ql := *k.q // per-group channel constants
	ql.Corr, ql.Mult = ql.Corr[grp*Mg:], ql.Mult[grp*Mg:]
	if ql.Bias != nil {
		ql.Bias = ql.Bias[grp*Mg:]
	}
	sz := avx.QASize(Mg, r.K)
	ap := k.w[grp*sz+i0*4*avx.K4(r.K) : (grp+1)*sz]
	o := avx.QOut{Q: r.yq[(n*k.p.M+grp*Mg)*r.phw:], Ld: r.phw}
	avx.QGemmPool(r.K, ap, rows, b, np, &o, &ql, i0, p0)
}
