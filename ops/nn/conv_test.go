package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func TestConvHandChecked(t *testing.T) {
	x := f32(dims(1, 1, 3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9)
	w := f32(dims(1, 1, 2, 2), 1, 1, 1, 1)
	y := mustCall(t, "Conv", 22, nil, x, w)
	near(t, "valid", y, dims(1, 1, 2, 2), []float64{12, 16, 24, 28}, 0)

	y = mustCall(t, "Conv", 22, attrs(aInts("pads", 1, 1, 1, 1)), x, w, f32(dims(1), 0.5))
	near(t, "padded with bias", y, dims(1, 1, 4, 4), []float64{
		1.5, 3.5, 5.5, 3.5,
		5.5, 12.5, 16.5, 9.5,
		11.5, 24.5, 28.5, 15.5,
		7.5, 15.5, 17.5, 9.5}, 0)

	// stride 2 with dilation 2 on a 1-D signal: taps at i, i+2
	x1 := f64(dims(1, 1, 7), 1, 2, 3, 4, 5, 6, 7)
	w1 := f64(dims(1, 1, 2), 10, 1)
	y = mustCall(t, "Conv", 11, attrs(aInts("strides", 2), aInts("dilations", 2)), x1, w1)
	near(t, "1-D strided dilated", y, dims(1, 1, 3), []float64{13, 35, 57}, 0)
}

// refConvIm2col is an independent Conv: for each image and group, gather
// the receptive fields into a column matrix [Cg·K, P] (zero where a tap
// falls in the padding) and multiply by the group's weights [Mg, Cg·K].
func refConvIm2col(x, w *ir.Tensor, b *ir.Tensor, group int64, strides, dils, padB, outSp []int64) []float64 {
	xd, wd := x.Dims, w.Dims
	r := len(xd) - 2
	N, C, M := xd[0], xd[1], wd[0]
	Cg, Mg := C/group, M/group
	kSp := wd[2:]
	K := prod(kSp)
	P := prod(outSp)
	xs, ws := x.Float64s(), w.Float64s()
	xStr := ops.Strides(xd)
	out := make([]float64, N*M*P)
	col := make([]float64, Cg*K*P)
	for n := int64(0); n < N; n++ {
		for g := int64(0); g < group; g++ {
			for ci := int64(0); ci < Cg; ci++ {
				for k := int64(0); k < K; k++ {
					kIdx := unflatten(k, kSp)
					for p := int64(0); p < P; p++ {
						oIdx := unflatten(p, outSp)
						off := n*xStr[0] + (g*Cg+ci)*xStr[1]
						inside := true
						for d := 0; d < r; d++ {
							pos := oIdx[d]*strides[d] + kIdx[d]*dils[d] - padB[d]
							if pos < 0 || pos >= xd[2+d] {
								inside = false
								break
							}
							off += pos * xStr[2+d]
						}
						v := 0.0
						if inside {
							v = xs[off]
						}
						col[(ci*K+k)*P+p] = v
					}
				}
			}
			for m := int64(0); m < Mg; m++ {
				oc := g*Mg + m
				for p := int64(0); p < P; p++ {
					s := 0.0
					if b != nil {
						s = b.Float64At(oc)
					}
					for q := int64(0); q < Cg*K; q++ {
						s += ws[oc*Cg*K+q] * col[q*P+p]
					}
					out[(n*M+oc)*P+p] = s
				}
			}
		}
	}
	return out
}

func unflatten(f int64, d []int64) []int64 {
	idx := make([]int64, len(d))
	for i := len(d) - 1; i >= 0; i-- {
		idx[i] = f % d[i]
		f /= d[i]
	}
	return idx
}

func TestConvAgainstIm2col(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name                string
		x, w                []int64
		group               int64
		strides, dils, pads []int64
		autoPad             string
		bias                bool
	}{
		{"1d", dims(2, 3, 11), dims(4, 3, 3), 1, dims(2), dims(2), dims(1, 2), "", true},
		{"2d grouped", dims(1, 4, 7, 6), dims(6, 2, 3, 2), 2, dims(2, 1), dims(1, 2), dims(1, 0, 2, 1), "", true},
		{"grouped, blocks of four and one", dims(2, 4, 6, 5), dims(10, 2, 3, 3), 2, dims(2, 2), dims(1, 1), dims(1, 0, 1, 1), "", true},
		{"depthwise", dims(2, 3, 5, 5), dims(3, 1, 3, 3), 3, dims(1, 1), dims(1, 1), dims(1, 1, 1, 1), "", false},
		{"depthwise multiplier", dims(1, 2, 6, 5), dims(4, 1, 3, 3), 2, dims(2, 2), dims(1, 1), dims(1, 1, 1, 1), "", true},
		{"3d", dims(1, 2, 4, 5, 3), dims(2, 2, 2, 3, 2), 1, dims(1, 2, 1), dims(1, 1, 2), dims(1, 0, 1, 0, 1, 1), "", true},
		{"1x1", dims(2, 8, 4, 3), dims(5, 8, 1, 1), 1, dims(1, 1), dims(1, 1), dims(0, 0, 0, 0), "", true},
		{"1x1 strided", dims(1, 3, 5, 5), dims(2, 3, 1, 1), 1, dims(2, 2), dims(1, 1), dims(0, 0, 0, 0), "", false},
		{"same upper", dims(1, 2, 7, 8), dims(3, 2, 4, 3), 1, dims(2, 3), dims(1, 1), nil, "SAME_UPPER", true},
		{"same lower", dims(1, 2, 7, 8), dims(3, 2, 4, 3), 1, dims(2, 3), dims(1, 1), nil, "SAME_LOWER", true},
		{"valid", dims(1, 1, 9, 4), dims(2, 1, 3, 3), 1, dims(2, 1), dims(2, 1), nil, "VALID", true},
		{"kernel wider than input with pads", dims(1, 1, 2, 3), dims(1, 1, 3, 5), 1, dims(1, 1), dims(1, 1), dims(1, 1, 1, 1), "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, w := randT(r, tc.x...), randT(r, tc.w...)
			var b *ir.Tensor
			in := []*ir.Tensor{x, w}
			if tc.bias {
				b = randT(r, tc.w[0])
				in = append(in, b)
			}
			rk := len(tc.x) - 2
			// expected geometry, worked out here independently
			padB, padE, out := make([]int64, rk), make([]int64, rk), make([]int64, rk)
			for d := 0; d < rk; d++ {
				n, k, s, dl := tc.x[2+d], tc.w[2+d], tc.strides[d], tc.dils[d]
				ext := (k-1)*dl + 1
				switch tc.autoPad {
				case "SAME_UPPER", "SAME_LOWER":
					out[d] = (n + s - 1) / s
					total := max(0, (out[d]-1)*s+ext-n)
					padB[d] = total / 2
					if tc.autoPad == "SAME_LOWER" {
						padB[d] = total - total/2
					}
					padE[d] = total - padB[d]
				case "VALID":
					out[d] = (n-ext)/s + 1
				default:
					padB[d], padE[d] = tc.pads[d], tc.pads[rk+d]
					out[d] = (n+padB[d]+padE[d]-ext)/s + 1
				}
			}
			at := attrs(aInt("group", tc.group), aInts("strides", tc.strides...), aInts("dilations", tc.dils...))
			if tc.autoPad != "" {
				at = append(at, aStr("auto_pad", tc.autoPad))
			} else {
				at = append(at, aInts("pads", tc.pads...))
			}
			want := refConvIm2col(x, w, b, tc.group, tc.strides, tc.dils, padB, out)
			y := mustCall(t, "Conv", 22, at, in...)
			near(t, tc.name, y, append(dims(tc.x[0], tc.w[0]), out...), want, 1e-12)

			// float32 and float16 go through the same float64 loops and round once
			in32 := make([]*ir.Tensor, len(in))
			for i, v := range in {
				in32[i] = ir.FromFloat64s(ir.Float32, v.Dims, v.Float64s())
			}
			y32 := mustCall(t, "Conv", 22, at, in32...)
			if y32.DType != ir.Float32 {
				t.Fatalf("float32 conv made %s", y32.DType)
			}
			near(t, tc.name+" f32", y32, y.Dims, want, 1e-5)
			in16 := make([]*ir.Tensor, len(in))
			for i, v := range in {
				in16[i] = ir.FromFloat64s(ir.Float16, v.Dims, v.Float64s())
			}
			y16 := mustCall(t, "Conv", 22, at, in16...)
			near(t, tc.name+" f16", y16, y.Dims, want, 2e-2)
		})
	}
}

// TestConvTransposeIsAdjoint checks ConvTranspose against Conv through
// the identity <Conv(x; W), u> = <x, ConvTranspose(u; W)>.
func TestConvTransposeIsAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name                string
		x, w                []int64 // Conv's input and weight dims
		group               int64
		strides, dils, pads []int64
	}{
		{"1d", dims(2, 3, 10), dims(2, 3, 3), 1, dims(2), dims(1), dims(1, 0)},
		{"2d strided dilated", dims(1, 2, 9, 8), dims(3, 2, 3, 2), 1, dims(2, 3), dims(2, 1), dims(1, 2, 0, 1)},
		{"2d grouped", dims(1, 4, 6, 7), dims(6, 2, 3, 3), 2, dims(2, 2), dims(1, 1), dims(1, 1, 1, 1)},
		{"3d", dims(1, 2, 5, 4, 6), dims(2, 1, 2, 3, 2), 2, dims(2, 1, 3), dims(1, 1, 1), dims(0, 1, 1, 1, 0, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, w := randT(r, tc.x...), randT(r, tc.w...)
			convAttrs := attrs(aInt("group", tc.group), aInts("strides", tc.strides...),
				aInts("dilations", tc.dils...), aInts("pads", tc.pads...))
			y := mustCall(t, "Conv", 22, convAttrs, x, w)
			u := randT(r, y.Dims...)
			// output_padding recovers the input size that the floor in Conv lost
			rk := len(tc.x) - 2
			op := make([]int64, rk)
			for d := 0; d < rk; d++ {
				ext := (tc.w[2+d]-1)*tc.dils[d] + 1
				op[d] = (tc.x[2+d] + tc.pads[d] + tc.pads[rk+d] - ext) % tc.strides[d]
			}
			ctAttrs := append(convAttrs, aInts("output_padding", op...))
			v := mustCall(t, "ConvTranspose", 22, ctAttrs, u, w)
			if !equalDims(v.Dims, x.Dims) {
				t.Fatalf("ConvTranspose made %v, want %v", v.Dims, x.Dims)
			}
			var lhs, rhs float64
			for i, e := range y.Float64s() {
				lhs += e * u.Float64At(int64(i))
			}
			for i, e := range v.Float64s() {
				rhs += e * x.Float64At(int64(i))
			}
			if d := lhs - rhs; d > 1e-9 || d < -1e-9 {
				t.Fatalf("<Conv x, u> = %v but <x, ConvT u> = %v", lhs, rhs)
			}
		})
	}
}

func TestConvTransposeHandChecked(t *testing.T) {
	x := f32(dims(1, 1, 3, 3), 0, 1, 2, 3, 4, 5, 6, 7, 8)
	w := f32(dims(1, 2, 3, 3), 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	plane := []float64{
		0, 1, 3, 3, 2,
		3, 8, 15, 12, 7,
		9, 21, 36, 27, 15,
		9, 20, 33, 24, 13,
		6, 13, 21, 15, 8}
	y := mustCall(t, "ConvTranspose", 22, nil, x, w)
	near(t, "convtranspose", y, dims(1, 2, 5, 5), append(append([]float64{}, plane...), plane...), 0)

	// output_shape larger than the input reaches: pads become negative
	// and the border gets only the bias.
	x1 := f64(dims(1, 1, 2), 1, 2)
	w1 := f64(dims(1, 1, 2), 1, 10)
	y = mustCall(t, "ConvTranspose", 22, attrs(aInts("output_shape", 5), aInts("strides", 1)), x1, w1, f64(dims(1), 100))
	// full output [1, 12, 20]; total padding 3-5 = -2: SAME_LOWER-style split puts -1 at each end
	near(t, "negative pads", y, dims(1, 1, 5), []float64{100, 101, 112, 120, 100}, 0)

	// stride 2 with SAME_UPPER doubles the size
	y = mustCall(t, "ConvTranspose", 22, attrs(aStr("auto_pad", "SAME_UPPER"), aInts("strides", 2)), x1, w1)
	near(t, "same upper", y, dims(1, 1, 4), []float64{1, 10, 2, 20}, 0)
}

func TestConvBadInputs(t *testing.T) {
	x := f32(dims(1, 3, 5, 5), make([]float64, 75)...)
	w := f32(dims(2, 3, 3, 3), make([]float64, 54)...)
	wantErr(t, "Conv", 22, nil, "channels", x, f32(dims(2, 2, 3, 3), make([]float64, 36)...))
	wantErr(t, "Conv", 22, nil, "rank", x, f32(dims(2, 3, 3), make([]float64, 18)...))
	wantErr(t, "Conv", 22, attrs(aInt("group", 2)), "divisible",
		f32(dims(1, 4, 5, 5), make([]float64, 100)...), f32(dims(3, 2, 3, 3), make([]float64, 54)...))
	wantErr(t, "Conv", 22, attrs(aInt("group", 0)), "group", x, w)
	wantErr(t, "Conv", 22, attrs(aInts("pads", 1, 1)), "pads", x, w)
	wantErr(t, "Conv", 22, attrs(aInts("strides", 0, 1)), "positive", x, w)
	wantErr(t, "Conv", 22, attrs(aStr("auto_pad", "SAME")), "auto_pad", x, w)
	wantErr(t, "Conv", 22, attrs(aInts("kernel_shape", 2, 2)), "kernel_shape", x, w)
	wantErr(t, "Conv", 22, nil, "smaller than", f32(dims(1, 3, 2, 2), make([]float64, 12)...), w)
	wantErr(t, "Conv", 22, nil, "B has dims", x, w, f32(dims(3), 0, 0, 0))
	wantErr(t, "Conv", 22, nil, "floating-point", i64(dims(1, 3, 5, 5), make([]int64, 75)...), w)
	wantErr(t, "Conv", 22, nil, "W is float64", x, f64(dims(2, 3, 3, 3), make([]float64, 54)...))
	wantErr(t, "Conv", 22, attrs(aInts("strides", 1, 1), &ir.Attribute{Name: "group", Type: ir.AttrFloat, F: 1}), "group", x, w)
	wantErr(t, "ConvTranspose", 22, nil, "channels", x, f32(dims(2, 3, 3, 3), make([]float64, 54)...))
	wantErr(t, "ConvTranspose", 22, attrs(aInts("output_padding", 1)), "output_padding", x, f32(dims(3, 1, 3, 3), make([]float64, 27)...))
	wantErr(t, "ConvTranspose", 22, attrs(aInts("pads", 5, 5, 5, 5)), "negative output", x, f32(dims(3, 1, 3, 3), make([]float64, 27)...))
}

func TestConvInferSymbolic(t *testing.T) {
	impl, _ := ops.Lookup("", "Conv", 11)
	n := &ir.Node{Name: "n", OpType: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"},
		Attrs: attrs(aInts("strides", 2, 2), aInts("pads", 3, 3, 3, 3))}
	x := ir.TensorType(ir.Float32, ir.Shape{ir.Sym("batch"), ir.D(3), ir.D(224), ir.Sym("w")})
	w := ir.TensorType(ir.Float32, ir.ShapeOf(dims(64, 3, 7, 7)))
	c := ops.NewInferCtx(n, 11, []*ir.Type{x, w}, nil, nil)
	if err := impl.Infer(c); err != nil {
		t.Fatal(err)
	}
	want := ir.Shape{ir.Sym("batch"), ir.D(64), ir.D(112), ir.Unknown()}
	if !c.Out[0].Shape.Equal(want) {
		t.Fatalf("inferred %v, want %v", c.Out[0], want)
	}
	// a mismatch is caught at build time too
	w2 := ir.TensorType(ir.Float32, ir.ShapeOf(dims(64, 4, 7, 7)))
	c = ops.NewInferCtx(n, 11, []*ir.Type{x, w2}, nil, nil)
	if err := impl.Infer(c); err == nil {
		t.Fatal("no error for 3 input channels against a weight for 4")
	}
}
