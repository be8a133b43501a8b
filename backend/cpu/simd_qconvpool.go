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

// poolPlan caches the kernel's packing plans (the last few made: a run
// needs a full band's and the last band's; shared by concurrent runs:
// plans are immutable).
type poolPlan struct {
	p     [4]atomic.Pointer[avx.QPoolPlan]
	next  atomic.Uint32
	s     [2]atomic.Pointer[avx.QPoolShift] // shift planes: a full band's and the last band's
	snext atomic.Uint32
}

func (c *poolPlan) shift(g *pack.Conv2D, images, plane int) *avx.QPoolShift {
	for i := range c.s {
		if s := c.s[i].Load(); s != nil && s.Matches(g, images, plane) {
			return s
		}
	}
	s := avx.NewQPoolShift(g, images, plane)
	c.s[c.snext.Add(1)%uint32(len(c.s))].Store(s)
	return s
}

func (c *poolPlan) get(g *pack.Conv2D, rows bool, images, plane int) *avx.QPoolPlan {
	for i := range c.p {
		if p := c.p[i].Load(); p != nil && p.Matches(g, rows, images, plane) {
			return p
		}
	}
	p := avx.NewQPoolPlan(g, rows, images, plane)
	c.p[c.next.Add(1)%uint32(len(c.p))].Store(p)
	return p
}

// setupPooled sizes a pooled run's items and its copies of the input
// (quad planes or padded row images) for N images; it returns the item
// count and the B slot's bytes. Items are (band, row block); a band is
// imgs whole images whose pooled outputs are numbered across them (groups
// run from one image into the next: no strip is left part empty at each
// image's end) where the plan packs directly and the conv has one group,
// else pb pooled outputs of one group image.
func (r *simdQConvRun) setupPooled(chunk, th, Mg, N int) (items, slot int) {
	k, g := r.k, &r.g
	rowsOrder := k.p.Order == simdQOrderRows
	if rowsOrder {
		ph, pw := avx.QPadSize(g)
		r.plane = k.p.Cg * ph * pw
	} else {
		r.quadPlanes = true
		r.plane = avx.Cg4(k.p.Cg) * avx.QuadPlaneWords(g.H, g.W)
	}
	r.phw = (g.OH / 2) * (g.OW / 2)
	r.imgs, r.images = 1, N
	per := N * k.p.Group
	if k.p.Group == 1 && N > 1 && r.phw >= avx.PoolGroup && avx.QPoolDirect(g, rowsOrder) {
		r.imgs = max(1, min(chunk/(4*r.phw), (N+2*th-1)/(2*th)))
		if bands := (N + r.imgs - 1) / r.imgs; bands%th != 0 { // a multiple of th bands: even shares
			bands += th - bands%th
			r.imgs = (N + bands - 1) / bands
		}
	}
	if r.imgs > 1 {
		r.nch = (N + r.imgs - 1) / r.imgs
		r.pb = r.imgs * r.phw
		last := N - (r.nch-1)*r.imgs
		if !rowsOrder && avx.QPoolShiftOK(g) { // shift planes instead of packed strips
			r.shift = k.plans.shift(g, r.imgs, r.plane)
			r.shiftLast = r.shift
			if last != r.imgs {
				r.shiftLast = k.plans.shift(g, last, r.plane)
			}
		} else {
			r.plan = k.plans.get(g, rowsOrder, r.imgs, r.plane)
			r.planLast = r.plan
			if last != r.imgs {
				r.planLast = k.plans.get(g, rowsOrder, last, r.plane)
			}
		}
		per = 1
	} else {
		r.plan = k.plans.get(g, rowsOrder, 1, r.plane)
		groups := (r.phw + avx.PoolGroup - 1) / avx.PoolGroup
		pg := max(1, min(groups, chunk/avx.NR)) // pooled groups per band
		if per*((groups+pg-1)/pg) < 2*th {
			want := (2*th + per - 1) / per
			pg = max(1, min(pg, (groups+want-1)/want))
		}
		r.pb, r.nch = pg*avx.PoolGroup, (groups+pg-1)/pg
	}
	r.rows = (Mg + avx.MR - 1) / avx.MR * avx.MR
	for per*r.nch*((Mg+r.rows-1)/r.rows) < 2*th && r.rows >= 4*avx.MR {
		r.rows = (r.rows/2 + avx.MR - 1) / avx.MR * avx.MR
	}
	r.nrb = (Mg + r.rows - 1) / r.rows
	bands := (r.pb + avx.PoolGroup - 1) / avx.PoolGroup * avx.PoolGroup
	if r.shift != nil {
		return per * r.nch * r.nrb, (r.shift.Size() + 63) &^ 63
	}
	return per * r.nch * r.nrb, (avx.QBSize(r.K, 4*bands) + 63) &^ 63
}

// doPooled computes one item of a pooled run: the pooled outputs of a
// band for rows [i0, i0+rows) (a row block).
func (r *simdQConvRun) doPooled(w, item int) {
	k := r.k
	Mg := k.p.M / k.p.Group
	rb := item % r.nrb
	item /= r.nrb
	i0 := rb * r.rows
	rows := min(r.rows, Mg-i0)
	ch := item % r.nch
	item /= r.nch
	grp, n := item%r.groups, item/r.groups
	plan, p0, np, img, imgs := r.plan, ch*r.pb, min(r.pb, r.phw-ch*r.pb), n*r.groups+grp, 1
	o := avx.QOut{Ld: r.phw}
	shift := r.shift
	if r.imgs > 1 { // a band of whole images (one group)
		n = ch * r.imgs
		imgs = min(r.imgs, r.images-n)
		if imgs < r.imgs {
			plan, shift = r.planLast, r.shiftLast
		}
		p0, np, img = 0, imgs*r.phw, n
		o.Jump = (k.p.M - 1) * r.phw
	}
	if shift != nil { // shift planes (one group: no per-group constants)
		sp := slotAs[uint8](r.sl, w, shift.Size())
		shift.Build(sp, r.xc[img*r.plane:(img+imgs)*r.plane])
		sz := avx.QASize(Mg, r.K)
		o.Q = r.yq[n*k.p.M*r.phw:]
		avx.QGemmPoolShift(r.K, k.w[i0*4*avx.K4(r.K):sz], rows, sp, shift, np, &o, k.q, i0)
		return
	}
	b := slotAs[uint8](r.sl, w, avx.QBSize(r.K, 4*((np+avx.PoolGroup-1)/avx.PoolGroup*avx.PoolGroup)))
	plan.Pack(b, r.xc[img*r.plane:(img+imgs)*r.plane], p0, np, k.pad)
	ql := *k.q // per-group channel constants
	ql.Corr, ql.Mult = ql.Corr[grp*Mg:], ql.Mult[grp*Mg:]
	if ql.Bias != nil {
		ql.Bias = ql.Bias[grp*Mg:]
	}
	sz := avx.QASize(Mg, r.K)
	ap := k.w[grp*sz+i0*4*avx.K4(r.K) : (grp+1)*sz]
	o.Q = r.yq[(n*k.p.M+grp*Mg)*r.phw:]
	avx.QGemmPool(r.K, ap, rows, b, np, &o, &ql, i0, p0)
}
