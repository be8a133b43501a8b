package nn

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
)

func seq(n int64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i + 1)
	}
	return v
}

func TestMaxPool(t *testing.T) {
	x := f32(dims(1, 1, 4, 4), seq(16)...)
	k2s2 := attrs(aInts("kernel_shape", 2, 2), aInts("strides", 2, 2))
	outs, err := call("MaxPool", 12, 2, k2s2, x)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "max", outs[0], dims(1, 1, 2, 2), []float64{6, 8, 14, 16}, 0)
	if got := outs[1].Int64s(); !equalDims(got, dims(5, 7, 13, 15)) {
		t.Fatalf("indices %v, want [5 7 13 15]", got)
	}
	outs, err = call("MaxPool", 12, 2, append(k2s2, aInt("storage_order", 1)), x)
	if err != nil {
		t.Fatal(err)
	}
	if got := outs[1].Int64s(); !equalDims(got, dims(5, 13, 7, 15)) {
		t.Fatalf("column-major indices %v, want [5 13 7 15]", got)
	}
	// the second plane's indices count from the start of the tensor
	x2 := f32(dims(1, 2, 2, 2), 1, 9, 3, 4, 8, 7, 6, 5)
	outs, err = call("MaxPool", 12, 2, attrs(aInts("kernel_shape", 2, 2)), x2)
	if err != nil {
		t.Fatal(err)
	}
	if got := outs[1].Int64s(); !equalDims(got, dims(1, 4)) {
		t.Fatalf("indices %v, want [1 4]", got)
	}
	// padding never wins, even against negative values
	neg := f32(dims(1, 1, 1, 3), -3, -1, -2)
	y := mustCall(t, "MaxPool", 12, attrs(aInts("kernel_shape", 1, 2), aInts("pads", 0, 1, 0, 1)), neg)
	near(t, "padded", y, dims(1, 1, 1, 4), []float64{-3, -1, -1, -2}, 0)
	// dilation 2 over a 1-D signal
	y = mustCall(t, "MaxPool", 12, attrs(aInts("kernel_shape", 2), aInts("dilations", 2)), f32(dims(1, 1, 5), 5, 1, 2, 9, 3))
	near(t, "dilated", y, dims(1, 1, 3), []float64{5, 9, 3}, 0)
	// int8 and uint8 keep their type
	for _, dt := range []ir.DType{ir.Int8, ir.Uint8} {
		xi := ir.FromInt64s(dt, dims(1, 1, 4), []int64{3, 7, 1, 2})
		y = mustCall(t, "MaxPool", 12, attrs(aInts("kernel_shape", 2), aInts("strides", 2)), xi)
		if y.DType != dt || y.Int64At(0) != 7 || y.Int64At(1) != 2 {
			t.Fatalf("%s maxpool gave %s %v", dt, y.DType, y.Int64s())
		}
	}
	// 3-D
	y = mustCall(t, "MaxPool", 12, attrs(aInts("kernel_shape", 2, 2, 2)), f32(dims(1, 1, 2, 2, 3), seq(12)...))
	near(t, "3-D", y, dims(1, 1, 1, 1, 2), []float64{11, 12}, 0)

	wantErr(t, "MaxPool", 12, nil, "kernel_shape", x)
	wantErr(t, "MaxPool", 12, attrs(aInts("kernel_shape", 5, 5)), "smaller than", x)
	wantErr(t, "MaxPool", 12, attrs(aInts("kernel_shape", 2, 2)), "rank", f32(dims(4, 4), seq(16)...))
	wantErr(t, "AveragePool", 19, attrs(aInts("kernel_shape", 2)), "floating-point", ir.FromInt64s(ir.Int8, dims(1, 1, 4), []int64{1, 2, 3, 4}))
}

func TestAveragePool(t *testing.T) {
	x := f64(dims(1, 1, 3, 3), 9, 9, 9, 9, 9, 9, 9, 9, 9)
	k3p1 := attrs(aInts("kernel_shape", 3, 3), aInts("pads", 1, 1, 1, 1))
	near(t, "exclude pad", mustCall(t, "AveragePool", 19, k3p1, x), dims(1, 1, 3, 3),
		[]float64{9, 9, 9, 9, 9, 9, 9, 9, 9}, 0)
	near(t, "include pad", mustCall(t, "AveragePool", 19, append(k3p1, aInt("count_include_pad", 1)), x), dims(1, 1, 3, 3),
		[]float64{4, 6, 4, 6, 9, 6, 4, 6, 4}, 1e-15)

	// ceil_mode: a last window that would start in the right padding is dropped
	x1 := f64(dims(1, 1, 4), 1, 2, 3, 4)
	ceil := attrs(aInts("kernel_shape", 2), aInts("strides", 2), aInts("pads", 0, 1), aInt("ceil_mode", 1))
	near(t, "ceil, dropped window", mustCall(t, "AveragePool", 19, ceil, x1), dims(1, 1, 2), []float64{1.5, 3.5}, 0)
	// ...but one that starts inside the input is kept, averaging what it covers
	x2 := f64(dims(1, 1, 5), 1, 2, 3, 4, 5)
	ceil = attrs(aInts("kernel_shape", 2), aInts("strides", 2), aInt("ceil_mode", 1))
	near(t, "ceil, partial window", mustCall(t, "AveragePool", 19, ceil, x2), dims(1, 1, 3), []float64{1.5, 3.5, 5}, 0)
	near(t, "ceil, partial window, include pad", mustCall(t, "AveragePool", 19, append(ceil, aInt("count_include_pad", 1)), x2),
		dims(1, 1, 3), []float64{1.5, 3.5, 5}, 0)
	near(t, "floor", mustCall(t, "AveragePool", 19, attrs(aInts("kernel_shape", 2), aInts("strides", 2)), x2),
		dims(1, 1, 2), []float64{1.5, 3.5}, 0)

	// dilations only exist from opset 19
	dil := attrs(aInts("kernel_shape", 2), aInts("dilations", 2))
	near(t, "dilated", mustCall(t, "AveragePool", 19, dil, x2), dims(1, 1, 3), []float64{2, 3, 4}, 0)

	near(t, "lp", mustCall(t, "LpPool", 18, attrs(aInts("kernel_shape", 2)), f64(dims(1, 1, 2), 3, -4)), dims(1, 1, 1), []float64{5}, 1e-15)
	near(t, "lp p=1", mustCall(t, "LpPool", 18, attrs(aInts("kernel_shape", 2), aInt("p", 1)), f64(dims(1, 1, 3), 3, -4, 1)),
		dims(1, 1, 2), []float64{7, 5}, 1e-15)
}

func TestGlobalPoolsAndUnpool(t *testing.T) {
	x := f32(dims(1, 2, 2, 2), 1, 2, 3, 4, -5, -6, -7, -8)
	near(t, "gap", mustCall(t, "GlobalAveragePool", 22, nil, x), dims(1, 2, 1, 1), []float64{2.5, -6.5}, 0)
	near(t, "gmp", mustCall(t, "GlobalMaxPool", 22, nil, x), dims(1, 2, 1, 1), []float64{4, -5}, 0)
	near(t, "glp", mustCall(t, "GlobalLpPool", 22, nil, f32(dims(1, 1, 2), 3, 4)), dims(1, 1, 1), []float64{5}, 1e-7)
	wantErr(t, "GlobalAveragePool", 22, nil, "rank", f32(dims(2, 2), 1, 2, 3, 4))

	// MaxPool then MaxUnpool puts every max back where it came from
	x4 := f32(dims(1, 1, 4, 4), 1, 9, 2, 3, 4, 5, 8, 6, 7, 0, 1, 1, 2, 3, 4, 16)
	k := attrs(aInts("kernel_shape", 2, 2), aInts("strides", 2, 2))
	outs, err := call("MaxPool", 12, 2, k, x4)
	if err != nil {
		t.Fatal(err)
	}
	y := mustCall(t, "MaxUnpool", 11, k, outs[0], outs[1])
	near(t, "unpool", y, dims(1, 1, 4, 4), []float64{0, 9, 0, 0, 0, 0, 8, 0, 7, 0, 0, 0, 0, 0, 0, 16}, 0)
	// a larger output_shape keeps the coordinates
	y = mustCall(t, "MaxUnpool", 11, k, outs[0], outs[1], i64(dims(4), 1, 1, 5, 5))
	near(t, "unpool to 5x5", y, dims(1, 1, 5, 5), []float64{
		0, 9, 0, 0, 0,
		0, 0, 8, 0, 0,
		7, 0, 0, 0, 0,
		0, 0, 0, 16, 0,
		0, 0, 0, 0, 0}, 0)
	wantErr(t, "MaxUnpool", 11, k, "out of range", outs[0], i64(dims(1, 1, 2, 2), 0, 1, 2, 99))
	wantErr(t, "MaxUnpool", 11, k, "indices", outs[0], outs[0])
}

func TestNormalizations(t *testing.T) {
	// BatchNormalization, inference: (x-mean)/sqrt(var+eps)*scale + B
	x := f32(dims(1, 2, 1, 2), 1, 2, 3, 4)
	sc, b, mean, vr := f32(dims(2), 1, 2), f32(dims(2), 0, 1), f32(dims(2), 1, 3), f32(dims(2), 1, 4)
	near(t, "batchnorm", mustCall(t, "BatchNormalization", 15, attrs(aFloat("epsilon", 0)), x, sc, b, mean, vr),
		dims(1, 2, 1, 2), []float64{0, 1, 1, 2}, 0)
	// training: batch statistics; running = input·momentum + batch·(1-momentum)
	outs, err := call("BatchNormalization", 15, 3, attrs(aInt("training_mode", 1), aFloat("epsilon", 0), aFloat("momentum", 0.5)),
		f64(dims(2, 1, 2), 1, 3, 5, 7), f64(dims(1), 1), f64(dims(1), 0), f64(dims(1), 0), f64(dims(1), 1))
	if err != nil {
		t.Fatal(err)
	}
	sd := math.Sqrt(5) // batch mean 4, variance (9+1+1+9)/4 = 5
	near(t, "training y", outs[0], dims(2, 1, 2), []float64{-3 / sd, -1 / sd, 1 / sd, 3 / sd}, 1e-15)
	near(t, "running mean", outs[1], dims(1), []float64{2}, 0)
	near(t, "running var", outs[2], dims(1), []float64{3}, 0)
	wantErr(t, "BatchNormalization", 15, nil, "want 2 values", x, f32(dims(3), 1, 1, 1), b, mean, vr)
	// opset 7 with spatial=0: one set of statistics per channel and position
	ones, zeros := f32(dims(2, 2), 1, 1, 1, 1), f32(dims(2, 2), 0, 0, 0, 0)
	near(t, "batchnorm spatial=0", mustCall(t, "BatchNormalization", 7, attrs(aInt("spatial", 0), aFloat("epsilon", 0)),
		f32(dims(2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8), ones, zeros, f32(dims(2, 2), 0, 1, 2, 3), ones),
		dims(2, 2, 2), []float64{1, 1, 1, 1, 5, 5, 5, 5}, 0)

	// LayerNormalization over the last two axes, against the formula
	xs := []float64{1, 2, 3, 4, 5, 6, -1, 0, 2, 2, 8, 1}
	X := f64(dims(2, 2, 3), xs...)
	W := f64(dims(2, 3), 1, 2, 3, 4, 5, 6)
	B := f64(dims(3), 0.5, 0, -0.5) // broadcast over the normalized [2, 3]
	outs, err = call("LayerNormalization", 17, 3, attrs(aInt("axis", 1), aFloat("epsilon", 0.01)), X, W, B)
	if err != nil {
		t.Fatal(err)
	}
	var want, means, invs []float64
	for o := 0; o < 2; o++ {
		seg := xs[o*6 : o*6+6]
		m := 0.0
		for _, v := range seg {
			m += v / 6
		}
		vv := 0.0
		for _, v := range seg {
			vv += (v - m) * (v - m) / 6
		}
		inv := 1 / math.Sqrt(vv+float64(float32(0.01)))
		means, invs = append(means, m), append(invs, inv)
		for i, v := range seg {
			want = append(want, (v-m)*inv*float64(i+1)+[]float64{0.5, 0, -0.5}[i%3])
		}
	}
	near(t, "layernorm", outs[0], dims(2, 2, 3), want, 1e-12)
	near(t, "layernorm mean", outs[1], dims(2, 1, 1), means, 1e-6)
	near(t, "layernorm invstddev", outs[2], dims(2, 1, 1), invs, 1e-6)
	if outs[1].DType != ir.Float32 {
		t.Fatalf("Mean is %s, want stash_type float32", outs[1].DType)
	}
	wantErr(t, "LayerNormalization", 17, nil, "broadcast", X, f64(dims(4), 1, 1, 1, 1))
	wantErr(t, "LayerNormalization", 17, attrs(aInt("axis", 3)), "out of range", X, W)

	// InstanceNormalization equals GroupNormalization with one channel per group
	in := f32(dims(2, 3, 4), 1, 5, 2, 8, -1, 0, 3, 3, 9, 9, 1, 0, 2, 2, 2, 3, 4, 1, 7, 1, 0, 0, 0, 5)
	s3, b3 := f32(dims(3), 1, -2, 0.5), f32(dims(3), 0, 1, 2)
	inst := mustCall(t, "InstanceNormalization", 22, nil, in, s3, b3)
	grp := mustCall(t, "GroupNormalization", 21, attrs(aInt("num_groups", 3)), in, s3, b3)
	near(t, "instance vs group", inst, dims(2, 3, 4), grp.Float64s(), 1e-6)
	// the first instance by hand: mean 4, variance 7.5
	d := math.Sqrt(7.5 + float64(float32(1e-5)))
	first := inst.Float64s()[:4]
	near(t, "instance", f64(dims(4), first...), dims(4), []float64{-3 / d, 1 / d, -2 / d, 4 / d}, 1e-6)
	// opset 18: scale and bias per group; two groups of one pair each
	g18 := mustCall(t, "GroupNormalization", 18, attrs(aInt("num_groups", 2), aFloat("epsilon", 0)),
		f64(dims(1, 4, 1), 1, 3, 10, 14), f64(dims(2), 1, 2), f64(dims(2), 0, 1))
	near(t, "groupnorm 18", g18, dims(1, 4, 1), []float64{-1, 1, -1, 3}, 1e-15)
	wantErr(t, "GroupNormalization", 21, attrs(aInt("num_groups", 2)), "divide", in, s3, b3)
	wantErr(t, "GroupNormalization", 21, attrs(aInt("num_groups", 3)), "want [3]", in, f32(dims(1), 1), b3)

	// RMSNormalization: x / sqrt(mean(x²)+eps) * scale
	rms := math.Sqrt(12.5)
	near(t, "rms", mustCall(t, "RMSNormalization", 23, attrs(aFloat("epsilon", 0)), f64(dims(1, 2), 3, 4), f64(dims(2), 1, 2)),
		dims(1, 2), []float64{3 / rms, 8 / rms}, 1e-15)

	// LRN over 3 channels, size 3: neighbours c-1..c+1
	lrnX := f64(dims(1, 3, 1, 1), 1, 2, 3)
	got := mustCall(t, "LRN", 13, attrs(aInt("size", 3), aFloat("alpha", 3), aFloat("beta", 1), aFloat("bias", 1)), lrnX)
	near(t, "lrn", got, dims(1, 3, 1, 1), []float64{1.0 / 6, 2.0 / 15, 3.0 / 14}, 1e-7)
	wantErr(t, "LRN", 13, nil, "size", lrnX)

	// MeanVarianceNormalization: zero mean and unit variance per channel
	mvn := mustCall(t, "MeanVarianceNormalization", 13, nil, f64(dims(2, 1, 1, 2), 1, 3, 5, 7))
	near(t, "mvn", mvn, dims(2, 1, 1, 2), []float64{-3 / sd, -1 / sd, 1 / sd, 3 / sd}, 1e-9)
}
