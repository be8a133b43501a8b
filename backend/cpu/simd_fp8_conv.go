package cpu

import (
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/kernels/parallel"
)

// f8ConvRun is one Run of an fp8 conv: the work split of cpu.conv.avx512
// (image, group, column chunk, row block), each item's FP32 sums computed
// into a worker-local tile and turned into output codes by kilnq's
// epilogue while the tile is in L1/L2 (the float32 sums never go to
// memory).
type f8ConvRun struct {
	k                 *simdF8Kernel
	c                 *simdConvKernel
	g                 pack.Conv2D
	plan              *avx.RunPlan
	K                 int
	x, z              []float32
	out               *ir.Tensor
	sl                slots
	chunk, nch        int
	rows, nrb, groups int
	bslot             int // floats of a worker's im2col strip buffer
	dec               f8Decode
}

func (k *simdF8Kernel) runConv(x *engine.Exec, in, out []*ir.Tensor) error {
	c := k.inner.(*simdConvKernel)
	g, err := c.geometry(in[0].Dims)
	if err != nil {
		return err
	}
	N := int(in[0].Dims[0])
	ohw := g.OH * g.OW
	if N == 0 || ohw == 0 {
		return nil
	}
	p := &c.p
	r := k.convRuns.get()
	defer k.convRuns.put(r)
	*r = f8ConvRun{k: k, c: c, g: g, K: g.K(), out: out[0], groups: p.Group}
	if p.Variant == simdIm2col {
		if pl := c.plan.Load(); pl.Fits(&g) {
			r.plan = pl
		} else if pl = avx.NewRunPlan(&g); pl != nil {
			c.plan.Store(pl)
			r.plan = pl
		}
	}
	Mg := p.M / p.Group
	th := simdThreads(x.Threads, N*p.M*ohw*g.K()/p.Group)
	// As cpu.conv.avx512: column chunks whose packed B stays in L2, finer
	// when there are too few items; row blocks when columns alone cannot
	// feed the threads.
	chunk := max(avx.NR, (128<<10)/(4*max(min(r.K, avx.KC), 1))/avx.NR*avx.NR)
	chunk = min(chunk, 1024) // the float tile (rows × chunk) stays in L2 too
	per := N * p.Group
	if per*((ohw+chunk-1)/chunk) < 2*th {
		want := (2*th + per - 1) / per
		chunk = max(avx.NR, min(chunk, ((ohw+want-1)/want+avx.NR-1)/avx.NR*avx.NR))
	}
	chunk = min(chunk, (ohw+avx.NR-1)/avx.NR*avx.NR)
	r.chunk, r.nch = chunk, (ohw+chunk-1)/chunk
	r.rows = (Mg + avx.MR - 1) / avx.MR * avx.MR
	r.rows = min(r.rows, 8*avx.MR) // tiles of at most 64 rows
	for per*r.nch*((Mg+r.rows-1)/r.rows) < 2*th && r.rows >= 4*avx.MR {
		r.rows = (r.rows/2 + avx.MR - 1) / avx.MR * avx.MR
	}
	r.nrb = (Mg + r.rows - 1) / r.rows
	items := per * r.nch * r.nrb
	workers := min(th, items)
	if p.Variant == simdIm2col {
		r.bslot = avx.BSize(r.K, chunk)
	}
	nx, nz := len(in[0].Data), 0
	if k.ztab != nil { // residual codes, decoded to their values first
		nz = len(in[1].Data)
	}
	prefix, sl := newSlotsPrefix(x, 4*(nx+nz), workers, 4*(r.bslot+r.rows*chunk))
	r.sl = sl
	r.x = bytesAs[float32](prefix, nx)
	if k.p.Resid {
		r.z = k.residual(th, in[1], bytesAs[float32](prefix[4*nx:], nz))
	}
	r.dec = f8Decode{dst: r.x, src: in[0].Data, lut: k.lut}
	parallel.Run(th, (nx+f8Chunk-1)/f8Chunk, &r.dec)
	parallel.Run(th, items, r)
	return nil
}

func (r *f8ConvRun) Do(w, item int) {
	k, c, g := r.k, r.c, &r.g
	p := &c.p
	rb := item % r.nrb
	item /= r.nrb
	ch := item % r.nch
	item /= r.nch
	grp := item % r.groups
	n := item / r.groups
	ohw := g.OH * g.OW
	Mg := p.M / p.Group
	j0 := ch * r.chunk
	cols := min(r.chunk, ohw-j0)
	i0 := rb * r.rows
	rows := min(r.rows, Mg-i0)
	xi := r.x[n*g.C*g.H*g.W : (n+1)*g.C*g.H*g.W]
	buf := slotAs[float32](r.sl, w, r.bslot+r.rows*r.chunk)
	tile := buf[r.bslot:]
	var b []float32
	ldb := 0
	if p.Variant == simdDirect {
		cg := g.C / g.Group
		b, ldb = xi[grp*cg*ohw+j0:], ohw
	} else {
		b = buf[:avx.BSize(r.K, cols)]
		if r.plan != nil {
			avx.Im2colPlanned(b, xi, r.plan, grp, j0, cols)
		} else {
			avx.Im2col(b, xi, g, grp, j0, cols)
		}
	}
	var e avx.Epi
	sz := avx.ASize(Mg, r.K)
	avx.Gemm(r.K, c.w[grp*sz+i0*r.K:(grp+1)*sz], rows, b, ldb, cols, tile, cols, &e, 0, 0)
	for i := 0; i < rows; i++ {
		oc := grp*Mg + i0 + i
		at := (n*p.M+oc)*ohw + j0
		var bias float32
		if k.bias != nil {
			bias = k.bias[oc]
		}
		var z []float32
		if r.z != nil {
			z = r.z[at : at+cols]
		}
		acc := tile[i*cols : (i+1)*cols]
		if k.epi.l.YScale > 0 {
			k.epi.row(acc, oc, bias, z, r.out.Data[at:at+cols], nil)
		} else {
			k.epi.row(acc, oc, bias, z, nil, r.out.F32()[at:at+cols])
		}
	}
}
