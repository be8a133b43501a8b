package cpu

import (
	"github.com/kilnml/kiln/kernels/avx"
	"github.com/kilnml/kiln/kernels/pack"
)

// pool2x2RowsF32 is pool2x2Rows for float32 on kernels/avx's row kernel
// (16 outputs per AVX-512 step, the same tap order, ties and NaN rule),
// one call per plane's run of rows.
func pool2x2RowsF32(out, in []float32, g *pack.Conv2D, lo, hi int) {
	hw := g.H * g.W
	for row := lo; row < hi; {
		plane, oh := row/g.OH, row%g.OH
		rows := min(hi-row, g.OH-oh)
		x := in[plane*hw+2*oh*g.W : plane*hw+2*(oh+rows)*g.W]
		avx.MaxPoolRowsF32(out[row*g.OW:(row+rows)*g.OW], x, g.W, g.OW, rows)
		row += rows
	}
}
