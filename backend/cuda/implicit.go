package cudabackend

import (
	"encoding/binary"
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// igemmK is the reduction step of igemm.cu (128 bytes of 8-bit elements):
// the k table covers K rounded up to it.
const igemmK = 128

// igemm.cu's tile (IG_BM output pixels × IG_BN output channels, 256 threads).
const igemmBM, igemmBN = 128, 64

// igemmName is the igemm.cu kernel for an input and output type ("" when
// there is none).
func igemmName(in cuda.DataType, out ir.DType, uint8In bool) string {
	var i string
	switch {
	case uint8In:
		i = "u8"
	case in == cuda.R16F:
		i = "f16"
	case in == cuda.R16BF:
		i = "bf16"
	case in == cuda.R8FE4M3:
		i = "e4m3"
	case in == cuda.R8I:
		i = "i8"
	default:
		return ""
	}
	var o string
	switch out {
	case ir.Float32:
		o = "f32"
	case ir.Float16, ir.BFloat16:
		o = "16"
	case ir.Float8E4M3FN:
		if i != "e4m3" {
			return ""
		}
		o = "e4m3"
	case ir.Int8, ir.Uint8:
		if i != "i8" && i != "u8" {
			return ""
		}
		o = map[ir.DType]string{ir.Int8: "i8", ir.Uint8: "u8"}[out]
	default:
		return ""
	}
	if (i == "f16" || i == "bf16") && o != "f32" && o != "16" {
		return ""
	}
	return "ig_" + i + "_" + o
}

// kTable is igemm.cu's ktab: for each group-local reduction index k =
// (c, kh, kw) the int32 quadruple {c, kh·dh, kw·dw, 0}, c = -1 past K (the
// padded columns, whose weights are zero).
func kTable(p gemmParams) []byte {
	n := roundUp(p.K, igemmK)
	b := make([]byte, n*16)
	khw := int64(p.KH * p.KW)
	for k := int64(0); k < n; k++ {
		c, dy, dx := int32(-1), int32(0), int32(0)
		if k < p.K {
			r := k % khw
			c, dy, dx = int32(k/khw), int32(r/int64(p.KW))*int32(p.DH), int32(r%int64(p.KW))*int32(p.DW)
		}
		binary.LittleEndian.PutUint32(b[k*16:], uint32(c))
		binary.LittleEndian.PutUint32(b[k*16+4:], uint32(dy))
		binary.LittleEndian.PutUint32(b[k*16+8:], uint32(dx))
	}
	return b
}

func (k *gemmKernel) runImplicit(x *engine.Exec, in, out []*ir.Tensor, nb, c, h, w, oh, ow int) error {
	X, Y := in[0], out[0]
	return step(x, in, out, func(g *device, st *execState, mark func(int) error) (bool, error) {
		f, err := g.igemmFn(igemmName(k.p.In, k.p.Out, k.p.Uint8))
		if err != nil {
			return false, err
		}
		need := alignUp(int64(len(X.Data)))
		if k.p.HasZ {
			need += alignUp(int64(len(in[1].Data)))
		}
		if err := st.reserve(g, need); err != nil {
			return false, err
		}
		dX, err := st.input(g, X, k.onDevice(0))
		if err != nil {
			return false, err
		}
		yn := k.p.YNHWC && !k.toHost(0) && layoutMatters(Y.Dims)
		var dZ cuda.DevPtr
		if k.p.HasZ {
			if dZ, err = st.inputAs(g, in[1], k.onDevice(1), yn); err != nil {
				return false, err
			}
		}
		dY, err := st.residentFor(g, Y)
		if err != nil {
			return false, err
		}
		st.setNHWC(Y, yn)
		if err := mark(1); err != nil {
			return false, err
		}
		ph, pw := k.p.pads(h, w, oh, ow)
		ys, zp := k.p.outQuant()
		groups := max(k.p.Groups, 1)
		M := int64(nb) * int64(oh) * int64(ow)
		og := k.p.N / int64(groups)
		grid := [3]uint32{uint32((M + igemmBM - 1) / igemmBM), uint32((og + igemmBN - 1) / igemmBN), uint32(groups)}
		if M > int64(1<<31-1)*igemmBM {
			return false, fmt.Errorf("implicit GEMM: %d output pixels", M)
		}
		args := cuda.NewArgs(dX, k.W, k.ktab, dY, nb, c, h, w, oh, ow, k.p.SH, k.p.SW, ph, pw, int(k.p.Kp), int(k.p.K), int(k.p.N), groups,
			k.scale, k.bias, dZ, k.p.ZFmt, k.p.ZScale, k.p.ZZero, k.p.Act, k.p.ActA, k.p.ActB, ys, zp, k.colsum, 128*b2i(k.p.Uint8)-k.p.XZero, k.p.XZero, b2i(yn))
		if err := f.Launch(st.s, grid, block256, 0, args); err != nil {
			return false, err
		}
		if err := mark(2); err != nil {
			return false, err
		}
		return k.finish(st, out, []cuda.DevPtr{dY})
	})
}
