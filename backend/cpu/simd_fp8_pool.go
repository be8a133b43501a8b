package cpu

import (
	le "encoding/binary"
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
)

// MaxPool over float8 codes (E4M3FN, E5M2) without decoding: a float8 code
// is sign-magnitude with the magnitude's bits ordered as its value, so
// key = code ^ (0x7f if negative) is an int8 whose order is the values'
// (−m becomes −1−m); the int8 pool (avx.MaxPoolCodes, vectorized) runs on
// the keys and the same xor maps the maximum back. The keys order −0 below
// +0 and put NaN codes at the ends, where ops/nn's MaxPool keeps the first
// of equal values and a NaN only when it comes first; so a plane with a −0
// or a NaN code (or an E5M2 ±Inf, which the reference re-encodes saturated)
// takes the reference loop instead (exact either way).
const simdF8PoolID = "cpu.maxpool.f8"

type simdF8PoolTactic struct{}

func (simdF8PoolTactic) Name() string { return "maxpool.f8" }

func (simdF8PoolTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	dt := inDType(l, 0)
	if !isFP8(dt) {
		return nil, fmt.Errorf("%s: %s is no float8 type", l.Node, dt)
	}
	// maxPoolTactic reads the attributes; it takes int8 for the dtype.
	fl := *l
	in0 := *l.In[0]
	in0.DType = ir.Int8
	fl.In = append([]*ir.Type{&in0}, l.In[1:]...)
	low, err := maxPoolTactic{}.Lower(&fl)
	if err != nil {
		return nil, err
	}
	var p poolParams
	if err := jsonUnmarshal(low.Params, &p); err != nil {
		return nil, err
	}
	if err := f8PoolWindowOK(&p.Win); err != nil {
		return nil, fmt.Errorf("%s: %v", l.Node, err)
	}
	p.DType = dt
	return lowered(simdF8PoolID, &p, nil, []int{0})
}

// f8PoolWindowOK refuses pads as large as the window (a window could then
// hold no input position, whose −Inf the reference encodes).
func f8PoolWindowOK(w *window) error {
	for i, pd := range w.Pads {
		if pd >= w.Kernel[i%2] {
			return fmt.Errorf("pad %d is not smaller than the window %v", pd, w.Kernel)
		}
	}
	return nil
}

type simdF8PoolKernel struct {
	maxPoolKernel
	lut *[256]float32
	nan byte // smallest magnitude (code & 0x7f) the key path leaves to the reference loop
}

func init() {
	register(simdF8PoolID, func(p *poolParams, _ []*ir.Tensor) (engine.Kernel, error) {
		lut := fp8Table(p.DType)
		if lut == nil || p.Average {
			return nil, fmt.Errorf("%s: max pool of %s", simdF8PoolID, p.DType)
		}
		if err := f8PoolWindowOK(&p.Win); err != nil {
			return nil, fmt.Errorf("%s: %v", simdF8PoolID, err)
		}
		k := &simdF8PoolKernel{maxPoolKernel: maxPoolKernel{p: *p}, lut: lut, nan: 0x7f}
		if p.DType == ir.Float8E5M2 {
			k.nan = 0x7c // ±Inf too: the reference re-encodes them saturated (±57344)
		}
		return k, nil
	})
}

type f8PoolRun struct {
	k        *simdF8PoolKernel
	g        pack.Conv2D
	in, out  *ir.Tensor
	sl       slots
	planes   int
	perItem  int  // planes per work item
	twoByTwo bool // 2×2/2 unpadded: avx.MaxPool2x2 over whole planes
}

func (k *simdF8PoolKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	g, err := k.p.Win.geometry(in[0].Dims, int(in[0].Dims[1]), int(in[0].Dims[1]))
	if err != nil {
		return err
	}
	planes := int(in[0].Dims[0]) * g.C
	if planes == 0 || g.OH*g.OW == 0 {
		return nil
	}
	r := &f8PoolRun{k: k, g: g, in: in[0], out: out[0], planes: planes, twoByTwo: pool2x2Window(&k.p.Win)}
	r.perItem = max(1, (64<<10)/max(g.H*g.W, 1))
	items := (planes + r.perItem - 1) / r.perItem
	r.sl = newSlots(x, min(x.Threads, items), r.perItem*g.H*g.W+8)
	run(x, items, r)
	return nil
}

// pool2x2Window says whether w is a 2×2 stride-2 unpadded window.
func pool2x2Window(w *window) bool {
	return w.Kernel == [2]int{2, 2} && w.Strides == [2]int{2, 2} && w.Dils == [2]int{1, 1} && w.Pads == [4]int{} &&
		(w.AutoPad == "NOTSET" || w.AutoPad == "" || w.AutoPad == "VALID") && !w.Ceil
}

func (r *f8PoolRun) Do(w, item int) {
	g := &r.g
	hw, ohw := g.H*g.W, g.OH*g.OW
	p0, p1 := item*r.perItem, min(r.planes, (item+1)*r.perItem)
	src := r.in.Data[p0*hw : p1*hw]
	dst := r.out.Data[p0*ohw : p1*ohw]
	keys := slotAs[byte](r.sl, w, len(src))
	if f8Keys(keys, src, r.k.nan) {
		if r.twoByTwo {
			avx.MaxPool2x2(dst, keys, g.W, g.H, p1-p0, false)
			f8Unkey(dst)
			return
		}
		ok := true
		for p := 0; p < p1-p0 && ok; p++ {
			ok = avx.MaxPoolCodes(dst[p*ohw:(p+1)*ohw], keys[p*hw:(p+1)*hw], g, false)
		}
		if ok {
			f8Unkey(dst)
			return
		}
	}
	for p := 0; p < p1-p0; p++ {
		f8MaxPlane(dst[p*ohw:(p+1)*ohw], src[p*hw:(p+1)*hw], g, r.k.lut, r.k.p.DType)
	}
}

// f8Unkey maps int8 order keys back to codes in place (the xor is its own
// inverse).
func f8Unkey(b []byte) {
	const highs = 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := le.LittleEndian.Uint64(b[i:])
		le.LittleEndian.PutUint64(b[i:], v^((v&highs)>>7*0x7f))
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(int8(b[i])>>7) & 0x7f
	}
}

// f8Keys writes the order keys of codes (code ^ 0x7f for negative codes)
// eight at a time, and reports false when the plane holds a −0 (0x80) or a
// NaN code (magnitude ≥ nan; E5M2 ±Inf too), which the keys do not map as
// the reference does.
func f8Keys(keys, codes []byte, nan byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	addNaN := uint64(0x80-nan) * ones // magnitude + addNaN sets bit 7 iff ≥ nan
	var special uint64
	i := 0
	for ; i+8 <= len(codes); i += 8 {
		v := le.LittleEndian.Uint64(codes[i:])
		neg := (v & highs) >> 7                           // 1 in each negative byte
		le.LittleEndian.PutUint64(keys[i:], v^(neg*0x7f)) // no carries: 0x7f per byte
		special |= (v&^highs + addNaN) & highs            // NaN magnitudes
		z := v ^ highs                                    // a zero byte where v has 0x80
		special |= (z - ones) &^ z & highs                // has-zero-byte test
	}
	for ; i < len(codes); i++ {
		c := codes[i]
		keys[i] = c ^ (byte(int8(c)>>7) & 0x7f)
		if c == 0x80 || c&0x7f >= nan {
			special = 1
		}
	}
	return special == 0
}

// f8MaxPlane is ops/nn's MaxPool over one plane of float8 codes: the
// window's positions inside the input in row-major order, the first of
// equal values winning and NaN kept only when first; the result is
// encoded back as the reference does (a NaN code becomes the format's).
func f8MaxPlane(y, x []byte, g *pack.Conv2D, lut *[256]float32, dt ir.DType) {
	var one ir.Tensor
	one.DType, one.Dims, one.Data = dt, []int64{1}, make([]byte, 1)
	for oh := 0; oh < g.OH; oh++ {
		for ow := 0; ow < g.OW; ow++ {
			first, best := true, byte(0)
			for kh := 0; kh < g.KH; kh++ {
				ih := oh*g.SH - g.PT + kh*g.DH
				if uint(ih) >= uint(g.H) {
					continue
				}
				for kw := 0; kw < g.KW; kw++ {
					iw := ow*g.SW - g.PL + kw*g.DW
					if uint(iw) >= uint(g.W) {
						continue
					}
					c := x[ih*g.W+iw]
					if first || lut[c] > lut[best] {
						first, best = false, c
					}
				}
			}
			one.SetFloat64At(0, float64(lut[best]))
			y[oh*g.OW+ow] = one.Data[0]
		}
	}
}
