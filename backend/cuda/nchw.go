package cudabackend

import (
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// pointwise reports a 1×1 convolution with stride 1 and no padding: its
// input image is already the GEMM's [K×P] operand.
func (k *gemmKernel) pointwise(ph, pw int) bool {
	return k.p.KH == 1 && k.p.KW == 1 && k.p.SH == 1 && k.p.SW == 1 && ph == 0 && pw == 0
}

func (k *gemmKernel) convPlan(g *device, d cuda.ConvGemmDesc) (*cuda.ConvGemm, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := [2]int64{d.Batch, d.P}
	if gp := k.nplans[key]; gp != nil {
		return gp, nil
	}
	gp, err := g.blas.PlanConv(d, workspaceBytes)
	if err != nil {
		return nil, err
	}
	if k.nplans == nil {
		k.nplans = map[[2]int64]*cuda.ConvGemm{}
	}
	k.nplans[key] = gp
	return gp, nil
}

// runNCHW is the cublaslt.nchw tactic: Y_n = act(W·cols_n + bias + Z_n)
// for every image n: one strided-batched cuBLASLt call writes NCHW
// directly and adds the residual (beta·C); the bias and activation are
// one in-place pass of bias_act_nchw, or cuBLASLt's ReLU epilogue when
// there is no bias. cols_n is the image itself for pointwise
// convolutions, else im2colt's [K×P] matrix.
func (k *gemmKernel) runNCHW(x *engine.Exec, in, out []*ir.Tensor, nb, c, h, w, oh, ow int) error {
	X, Y := in[0], out[0]
	ph, pw := k.p.pads(h, w, oh, ow)
	P := int64(oh) * int64(ow)
	esz := k.p.In.Size()
	direct := k.pointwise(ph, pw)
	return step(x, in, out, func(g *device, st *execState, mark func(int) error) (bool, error) {
		d := cuda.ConvGemmDesc{N: k.p.N, P: P, K: k.p.K, Batch: int64(nb), LdW: k.p.Kp, StrideX: k.p.K * P,
			StrideY: k.p.N * P, In: k.p.In, Out: k.p.In, Relu: !k.p.HasBias && k.p.Act == actCodes["Relu"], Residual: k.p.HasZ}
		pass := k.p.HasBias || (k.p.Act != actCodes[""] && !d.Relu)
		gp, err := k.convPlan(g, d)
		if err != nil {
			return false, err
		}
		need := alignUp(int64(len(X.Data)))
		if !direct {
			need += alignUp(int64(nb) * k.p.K * P * esz)
		}
		if k.p.HasZ {
			need += alignUp(int64(len(in[1].Data)))
		}
		if err := st.reserve(g, need); err != nil {
			return false, err
		}
		var cols cuda.DevPtr
		if !direct {
			cols = st.take(int64(nb) * k.p.K * P * esz)
		}
		dX, err := st.input(g, X, k.onDevice(0))
		if err != nil {
			return false, err
		}
		var dZ cuda.DevPtr
		if k.p.HasZ {
			if dZ, err = st.input(g, in[1], k.onDevice(1)); err != nil {
				return false, err
			}
		}
		dY, err := st.residentFor(g, Y)
		if err != nil {
			return false, err
		}
		if err := mark(1); err != nil {
			return false, err
		}
		if direct {
			cols = dX
		} else {
			name := map[int64]string{4: "im2colt_b4", 2: "im2colt_b2"}[esz]
			args := cuda.NewArgs(dX, cols, nb, c, h, w, k.p.KH, k.p.KW, oh, ow, k.p.SH, k.p.SW, ph, pw, k.p.DH, k.p.DW)
			if err := launch1(g, st, name, int64(nb)*k.p.K*P, args); err != nil {
				return false, err
			}
		}
		if err := gp.Run(st.blas, st.s, cols, k.W, dZ, dY, st.ws, workspaceBytes); err != nil {
			return false, err
		}
		if pass {
			n := int64(nb) * k.p.N * P
			var err error
			if esz == 2 && P%8 == 0 { // 16-byte vectors of one channel
				args := cuda.NewArgs(dY, n/8, int(k.p.N), int(P/8), k.bias, k.p.Act, k.p.ActA, k.p.ActB, b2i(k.p.In == cuda.R16BF))
				err = launch1(g, st, "bias_act_nchw16x8", n/8, args)
			} else {
				f := map[int64]int{4: 0, 2: 1 + b2i(k.p.In == cuda.R16BF)}[esz]
				args := cuda.NewArgs(dY, n, int(k.p.N), int(P), k.bias, k.p.Act, k.p.ActA, k.p.ActB, f)
				err = launch1(g, st, "bias_act_nchw", n, args)
			}
			if err != nil {
				return false, err
			}
		}
		if err := mark(2); err != nil {
			return false, err
		}
		return k.finish(st, out, []cuda.DevPtr{dY})
	})
}
