package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/f32"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// kiln.DynQMatMul on the VNNI micro-kernel: per block of tokens a worker
// computes each row's dynamic scale and int8 codes (kilnq.RowScale and
// QuantizeRow, as the portable cpu.dynqmatmul), packs them as the A side,
// and gets float32(exact Σ x·w) from avx.QGemm (weights packed at build
// time as u8 with column sums, multipliers 1, no epilogue); kilnq's
// epilogue with the row's scale then runs in Go, GELU a row at a time
// (f32.GeluRow is kiln.Gelu32): bit-exact with the reference.
var simdDynqIDs = isaIDs{fam: famI8, ids: [3]string{"cpu.dynqmatmul.vnni", "cpu.dynqmatmul.avx2", "cpu.dynqmatmul.generic"}}

type simdDynqTactic struct{}

func (simdDynqTactic) Name() string { return "dynq." + simdDynqIDs.tag("vnni") + ".i8" }

func (simdDynqTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if inDType(l, 0) != ir.Float32 || !isConst(l, 1) || l.Const[1].DType != ir.Int8 || l.Const[1].Rank() != 2 {
		return nil, fmt.Errorf("%s: want float32 A and constant int8 [K, N] weights", n)
	}
	w := l.Const[1]
	lay, err := kilnq.DynQLayer(n)
	if err != nil {
		return nil, err
	}
	p := dynqParams{K: int(w.Dims[0]), N: int(w.Dims[1]), WScales: lay.WScales, Act: actParam(lay.Act)}
	if p.K > avxMaxK {
		return nil, fmt.Errorf("%s: depth %d could overflow int32 accumulators", n, p.K)
	}
	if len(p.WScales) != 1 && len(p.WScales) != p.N {
		return nil, fmt.Errorf("%s: %d w_scales for %d columns", n, len(p.WScales), p.N)
	}
	src := w.I8()
	wu := make([]uint8, len(src))
	sums := ir.NewTensor(ir.Int32, []int64{int64(p.N)})
	for i, v := range src {
		wu[i] = uint8(v) ^ 0x80
		sums.I32()[i%p.N] += int32(v)
	}
	packed := ir.NewTensor(ir.Uint8, []int64{int64(avx.QBSize(p.K, p.N))})
	avx.PackQB(packed.Data, wu, p.K, p.N, p.N, 1, 128)
	weights, inputs, bias, resid, err := epilogueInputs(l, []*ir.Tensor{packed, sums}, p.N)
	if err != nil {
		return nil, err
	}
	p.Bias, p.Resid = bias, resid
	return lowered(simdDynqIDs.now(), &p, weights, inputs)
}

type simdDynqKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	dynqKernel
	wq    []uint8
	q     avx.QLayer // multipliers 1: float32(Σ x·w) out
	ws    []float32  // w_scales, one per column
	zeros []float32  // the bias or residual row when absent (kilnq adds 0)
	runs  runPool[simdDynqRun]
}

func init() {
	registerISA(simdDynqIDs, func(p *dynqParams, w []*ir.Tensor) (engine.Kernel, error) {
		if len(w) < 2 || w[0].DType != ir.Uint8 || len(w[0].Data) != avx.QBSize(p.K, p.N) || w[1].DType != ir.Int32 ||
			len(w[1].I32()) != p.N || (p.Bias && (len(w) < 3 || len(w[2].F32()) != p.N)) {
			return nil, fmt.Errorf("%s: bad weights", simdDynqIDs)
		}
		k := &simdDynqKernel{dynqKernel: dynqKernel{p: *p, lay: kilnq.Layer{XScale: 1, WScales: p.WScales, Act: kiln.Activation(p.Act), OutType: ir.Float32}}, wq: w[0].Data}
		if p.Bias {
			k.bias = w[2].F32()
		}
		ones := make([]float32, p.N)
		for i := range ones {
			ones[i] = 1
		}
		k.q = avx.QLayer{Corr: make([]int32, p.N), Mult: ones, Col: true}
		k.ws, k.zeros = make([]float32, p.N), make([]float32, p.N)
		for c := range k.ws {
			k.ws[c] = p.WScales[min(c, len(p.WScales)-1)]
		}
		return k, nil
	})
}

type simdDynqRun struct {
	k       *simdDynqKernel
	a, y, z []float32
	rows    int
	chunk   int
	sl      slots
}

func (k *simdDynqKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	r := k.runs.get()
	defer k.runs.put(r)
	K, N := k.p.K, k.p.N
	*r = simdDynqRun{k: k, a: in[0].F32(), y: out[0].F32(), chunk: 4 * avx.MR}
	if k.p.Resid {
		r.z = in[1].F32()
	}
	r.rows = len(r.y) / max(N, 1)
	if r.rows == 0 || N == 0 {
		return nil
	}
	th := simdThreads(x.Threads, r.rows*N*K)
	for (r.rows+r.chunk-1)/r.chunk < 2*th && r.chunk > avx.MR {
		r.chunk /= 2
	}
	items := (r.rows + r.chunk - 1) / r.chunk
	r.sl = newSlots(x, min(th, items), align64(r.chunk*K)+align64(avx.QASize(r.chunk, K))+4*r.chunk*(N+2))
	parallel.Run(th, items, r)
	return nil
}

// Do quantizes, multiplies and finishes one block of tokens.
func (r *simdDynqRun) Do(w, item int) {
	k := r.k
	K, N := k.p.K, k.p.N
	t0 := item * r.chunk
	rows := min(r.chunk, r.rows-t0)
	buf := r.sl.buf[w*r.sl.slot : (w+1)*r.sl.slot]
	codes := bytesAs[int8](buf, r.chunk*K)
	buf = buf[align64(r.chunk*K):]
	ap := bytesAs[int8](buf, avx.QASize(r.chunk, K))
	buf = buf[align64(avx.QASize(r.chunk, K)):]
	acc := bytesAs[float32](buf, r.chunk*(N+2))
	scales, rcorr := acc[r.chunk*N:r.chunk*N+r.chunk], bytesAs[int32](buf[4*r.chunk*(N+1):], r.chunk)
	for t := 0; t < rows; t++ {
		row := r.a[(t0+t)*K : (t0+t+1)*K]
		var nan bool
		scales[t], nan = rowScale(row)
		if nan { // kilnq's codes for NaN are 0, f32.QuantizeRow's the lowest
			kilnq.QuantizeRow(codes[t*K:(t+1)*K], row, scales[t])
			continue
		}
		f32.QuantizeRow(int8Bytes(codes[t*K:(t+1)*K]), row, scales[t], 0, false)
		for i, c := range codes[t*K : (t+1)*K] {
			if c == -128 { // kilnq saturates to ±127 (symmetric)
				codes[t*K+i] = -127
			}
		}
	}
	avx.PackQRows(ap, int8Bytes(codes[:rows*K]), rows, K, 0, rcorr)
	o := avx.QOut{F: acc[:r.chunk*N], Ld: N}
	q := k.q
	q.RCorr = rcorr
	avx.QGemm(K, ap, rows, k.wq, N, &o, &q, 0, 0)
	act := k.lay.Act
	bias := k.bias
	if bias == nil {
		bias = k.zeros
	}
	for t := 0; t < rows; t++ {
		yo := (t0 + t) * N
		y := r.y[yo : yo+N]
		z := k.zeros
		if r.z != nil {
			z = r.z[yo : yo+N]
		}
		// kilnq.Layer.Epilogue before the activation, step for step.
		f32.ScaleAddRow(y, acc[t*N:(t+1)*N], k.ws, bias, z, scales[t])
		switch act.Kind {
		case "":
		case "Gelu":
			f32.GeluRow(y)
		default:
			for c, v := range y {
				y[c] = act.Apply32(v)
			}
		}
	}
}

// int8Bytes views int8 codes as bytes.
func int8Bytes(c []int8) []byte {
	if len(c) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c))), len(c))
}

// rowScale is kilnq.RowScale (max |v| over the finite entries / 127, or 1)
// with 4 partial maxima, and whether the row holds a NaN.
func rowScale(row []float32) (float32, bool) {
	const absMask = 1<<31 - 1
	inf := math.Float32bits(float32(math.Inf(1)))
	var m [4]uint32 // |v| bit patterns: ordered like the values for finite v
	nan := false
	i := 0
	for ; i+4 <= len(row); i += 4 {
		for j, v := range row[i : i+4 : i+4] {
			b := math.Float32bits(v) & absMask
			if b > inf {
				nan = true
			} else if b < inf && b > m[j] {
				m[j] = b
			}
		}
	}
	for _, v := range row[i:] {
		b := math.Float32bits(v) & absMask
		if b > inf {
			nan = true
		} else if b < inf && b > m[0] {
			m[0] = b
		}
	}
	amax := math.Float32frombits(max(m[0], m[1], m[2], m[3]))
	if amax == 0 {
		return 1, nan
	}
	return amax / 127, nan
}
