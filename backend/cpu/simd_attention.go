package cpu

import (
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
	"github.com/kilnml/kiln/kernels/parallel"
	"github.com/kilnml/kiln/ops/kiln"
)

// kiln.Attention on kernels/avx: per (batch entry, block of query rows)
// S = Q·Kᵀ and Y = P·V on the packed AVX-512 GEMM (K read in place when the
// graph already gives Kᵀ as [D, Sk], V always in place), scale, mask and
// softmax in float32 between them (f32.SoftmaxRow: Exp32 with range
// reduction). The blocks are split over the worker pool. It differs from
// the float64 reference within attnTolerance (simd_attention_test.go); the
// builder times it against the portable cpu.attention and keeps the faster.
var simdAttentionIDs = isaIDs{fam: famF32, ids: [3]string{"cpu.attention.avx512", "cpu.attention.avx2", "cpu.attention.generic"}}

// simdTransformerBackend offers the SIMD transformer tactics next to the
// portable ones, at the SIMD backend's priority (see simdBackend).
type simdTransformerBackend struct{}

func (simdTransformerBackend) Name() string  { return "cpu" }
func (simdTransformerBackend) Priority() int { return 9 }

func init() { engine.RegisterBackend(simdTransformerBackend{}) }

func (simdTransformerBackend) Tactics(l *engine.Layer) []engine.Tactic {
	if disabled || !simdAvailable() || l.Node.Domain != kiln.Domain {
		return nil
	}
	if l.Node.OpType == "DynQMatMul" && (l.Precision == engine.FP32 || l.Precision == engine.INT8) && len(avx.QVariants()) > 1 {
		return []engine.Tactic{simdDynqTactic{}}
	}
	if l.Precision != engine.FP32 {
		return nil
	}
	if l.Node.OpType == "Attention" {
		return []engine.Tactic{simdAttentionTactic{}}
	}
	return nil
}

type simdAttentionTactic struct{}

func (simdAttentionTactic) Name() string {
	return "attention." + simdAttentionIDs.tag("avx512") + ".f32"
}

func (simdAttentionTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	lw, err := attentionTactic{}.Lower(l)
	if err != nil {
		return nil, err
	}
	lw.Kernel = simdAttentionIDs.now()
	return lw, nil
}

type simdAttentionKernel struct {
	builtFor // the variant the plan names (simd_isa.go)
	attentionKernel
	runs runPool[simdAttentionRun]
}

func init() {
	registerISA(simdAttentionIDs, func(p *attentionParams, _ []*ir.Tensor) (engine.Kernel, error) {
		return &simdAttentionKernel{attentionKernel: attentionKernel{p: *p}}, nil
	})
}

type simdAttentionRun struct {
	k           *simdAttentionKernel
	s           attnShape
	q, kk, v, m []float32
	y           []float32
	sl          slots
	chunk, nch  int
	apQ, bpK    int // scratch sizes (elements); bpK 0 when K is read in place
	sc, apP     int
}

func (k *simdAttentionKernel) Run(x *engine.Exec, in, out []*ir.Tensor) error {
	s, err := k.shape(in)
	if err != nil {
		return err
	}
	r := k.runs.get()
	defer k.runs.put(r)
	*r = simdAttentionRun{k: k, s: s, q: in[0].F32(), kk: in[1].F32(), v: in[2].F32(), y: out[0].F32()}
	if k.p.Mask {
		r.m = in[3].F32()
	}
	if s.batch == 0 || s.sq == 0 || s.dv == 0 {
		return nil
	}
	th := simdThreads(x.Threads, s.batch*s.sq*s.sk*(s.d+s.dv))
	// Query blocks of up to 64 rows (whole micro-kernel strips), halved
	// while there are fewer blocks than twice the workers.
	r.chunk = min(64, (s.sq+avx.MR-1)/avx.MR*avx.MR)
	for s.batch*((s.sq+r.chunk-1)/r.chunk) < 2*th && r.chunk > avx.MR {
		r.chunk = (r.chunk/2 + avx.MR - 1) / avx.MR * avx.MR
	}
	r.nch = (s.sq + r.chunk - 1) / r.chunk
	r.apQ = avx.ASize(r.chunk, s.d)
	if !k.p.KTransposed {
		r.bpK = avx.BSize(s.d, s.sk)
	}
	r.sc = r.chunk * s.sk
	r.apP = avx.ASize(r.chunk, s.sk)
	items := s.batch * r.nch
	r.sl = newSlots(x, min(th, items), 4*(r.apQ+r.bpK+r.sc+r.apP))
	parallel.Run(th, items, r)
	return nil
}

// Do computes one block of query rows of one batch entry.
func (r *simdAttentionRun) Do(w, item int) {
	s := &r.s
	bi, ch := item/r.nch, item%r.nch
	var off [4]int
	rem := bi
	for i := s.rank - 1; i >= 0; i-- {
		d := int(s.out[i])
		idx := rem % d
		rem /= d
		for t := range off {
			off[t] += idx * s.st[t][i]
		}
	}
	i0 := ch * r.chunk
	rows := min(r.chunk, s.sq-i0)
	buf := slotAs[float32](r.sl, w, r.apQ+r.bpK+r.sc+r.apP)
	apQ, buf := buf[:r.apQ], buf[r.apQ:]
	bpK, buf := buf[:r.bpK], buf[r.bpK:]
	sc, apP := buf[:rows*s.sk], buf[r.sc:r.sc+r.apP]
	packRows(apQ, r.q[off[0]+i0*s.d:off[0]+(i0+rows)*s.d], rows, s.d, nil)
	kmat, ldk := r.kk[off[1]:off[1]+s.d*s.sk], s.sk // Kᵀ as [D, Sk], read in place
	if !r.k.p.KTransposed {                         // K is [Sk, D]: pack its transpose
		pack.B(bpK, kmat, (*[256]float32)(nil), s.d, s.sk, 1, s.d, avx.NR)
		kmat, ldk = bpK, 0
	}
	var none avx.Epi
	avx.Gemm(s.d, apQ, rows, kmat, ldk, s.sk, sc, s.sk, &none, 0, 0)
	var inv [128]float32 // r.chunk ≤ 128
	softmaxScores(sc, s, &r.k.p, r.m, off[3], i0, inv[:rows])
	packRows(apP, sc, rows, s.sk, inv[:rows])
	yo := bi*s.sq*s.dv + i0*s.dv
	avx.Gemm(s.sk, apP, rows, r.v[off[2]:off[2]+s.sk*s.dv], s.dv, s.dv, r.y[yo:yo+rows*s.dv], s.dv, &none, 0, 0)
}

// packRows is avx.PackA for a row-major float32 matrix (rows×k, row stride
// k), each row multiplied by scale[i] when scale is not nil (the softmax's
// 1/Σ, so that P = e·(1/Σ) is rounded once, as SoftmaxRowMax would).
func packRows(dst, src []float32, rows, k int, scale []float32) {
	if scale == nil {
		avx.PackA(dst, src, rows, k, k, 1)
		return
	}
	for s := 0; s < rows; s += avx.MR {
		strip := dst[s*k : (s+avx.MR)*k]
		mr := min(avx.MR, rows-s)
		for i := 0; i < mr; i++ {
			row := src[(s+i)*k : (s+i+1)*k]
			f := scale[s+i]
			for p, v := range row {
				strip[p*avx.MR+i] = v * f
			}
		}
		for i := mr; i < avx.MR; i++ {
			for p := 0; p < k; p++ {
				strip[p*avx.MR+i] = 0
			}
		}
	}
}
