package cpu

import (
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
)

// pool2x2RowsF32 is pool2x2Rows for float32 on kernels/avx's row kernel
// (16 outputs per AVX-512 step, the same tap order, ties and NaN rule).
func pool2x2RowsF32(out, in []float32, g *pack.Conv2D, lo, hi int) {
	hw := g.H * g.W
	for row := lo; row < hi; row++ {
		plane, oh := row/g.OH, row%g.OH
		x0 := in[plane*hw+2*oh*g.W : plane*hw+2*oh*g.W+g.W]
		x1 := in[plane*hw+(2*oh+1)*g.W : plane*hw+(2*oh+1)*g.W+g.W]
		avx.MaxPoolRowF32(out[row*g.OW:row*g.OW+g.OW], x0, x1)
	}
}
