package cpu

import (
	"fmt"
	"math"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/ops/kilnq"
)

// Per-tensor QuantizeLinear float32 → E4M3FN/E5M2 (an fp8 engine's input
// reformat) on avx.F8Epilogue with M = 1 and B = Z = −0, so y is x itself
// (−0 and NaN included) and the code is round-half-even(x / scale) as
// cpu.reformat and ops/qops compute it; blocks that saturate (or hold NaN
// or ±Inf) take cpu.reformat's floatx loop, honouring `saturate`.
const simdF8QuantizeID = "cpu.quantize.f8"

type simdF8QuantizeTactic struct{}

func (simdF8QuantizeTactic) Name() string { return "quantize.f8" }

func (simdF8QuantizeTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	low, err := reformatTactic{}.Lower(l)
	if err != nil {
		return nil, err
	}
	var p reformatParams
	if err := jsonUnmarshal(low.Params, &p); err != nil {
		return nil, err
	}
	if p.Op != "quantize" || p.From != ir.Float32 || !isFP8(p.To) || p.Zero != 0 {
		return nil, fmt.Errorf("%s: not a float32 → float8 quantization", l.Node)
	}
	return lowered(simdF8QuantizeID, &p, nil, low.Inputs)
}

type simdF8QuantizeKernel struct {
	reformatKernel
	f   floatx.F8Format
	epi avx.F8Epi
}

func init() {
	register(simdF8QuantizeID, func(p *reformatParams, _ []*ir.Tensor) (engine.Kernel, error) {
		f, ok := kilnq.FP8Format(p.To)
		if p.Op != "quantize" || p.From != ir.Float32 || !ok || p.Zero != 0 || !(p.Scale > 0) {
			return nil, fmt.Errorf("%s: bad parameters", simdF8QuantizeID)
		}
		e := newF8Encoder(f)
		negZero := float32(math.Copysign(0, -1))
		return &simdF8QuantizeKernel{reformatKernel: reformatKernel{p: *p}, f: f,
			epi: avx.F8Epi{M: 1, B: negZero, Z: negZero, YScale: p.Scale, Sub: e.subScale32, Half: e.half, Rebias: e.rebias,
				Lo: e.minNorm, Hi: e.maxBits, Sh: e.sh}}, nil
	})
}

type f8QuantizeRun struct {
	k       *simdF8QuantizeKernel
	in, out *ir.Tensor
	n       int
}

func (k *simdF8QuantizeKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	r := &f8QuantizeRun{k: k, in: in[0], out: out[0], n: int(in[0].Len())}
	run(x, (r.n+reformatChunk-1)/reformatChunk, r)
	return nil
}

func (r *f8QuantizeRun) Do(_, item int) {
	lo, hi := item*reformatChunk, min(r.n, (item+1)*reformatChunk)
	src, dst := r.in.F32()[lo:hi], r.out.Data[lo:hi]
	p := &r.k.p
	for len(src) > 0 {
		done := avx.F8Epilogue(src, dst, &r.k.epi)
		if done == len(src) {
			return
		}
		end := min(len(src), done+16)
		for i := done; i < end; i++ { // as cpu.reformat
			dst[i] = floatx.F64ToF8(float64(src[i]/p.Scale), r.k.f, p.Sat)
		}
		src, dst = src[end:], dst[end:]
	}
}
