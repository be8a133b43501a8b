package qops

import (
	"math"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func TestQuantizePerTensor(t *testing.T) {
	// no zero point: uint8, round half to even, saturate
	y := mustRun(t, 13, "QuantizeLinear", nil, f32([]int64{7}, 0, 1, 2.5, 3.5, -1, 1000, 0.5), f32(nil, 1))
	checkInts(t, "default uint8", y, ir.Uint8, []int64{7}, 0, 1, 2, 4, 0, 255, 0)
	// round first, then add the zero point: round(2.5)+1 = 3, not round(3.5) = 4
	y = mustRun(t, 13, "QuantizeLinear", nil, f32([]int64{3}, 0.5, 1.5, 2.5), f32(nil, 1), ints(ir.Uint8, nil, 1))
	checkInts(t, "odd zero point", y, ir.Uint8, []int64{3}, 1, 3, 3)
	y = mustRun(t, 13, "QuantizeLinear", nil, f32([]int64{4}, -300, -3, 3, 300), f32(nil, 2), ints(ir.Int8, []int64{1}, -1))
	checkInts(t, "int8", y, ir.Int8, []int64{4}, -128, -3, 1, 127)
	// a zero scale: +-Inf saturate, 0/0 gives the zero point
	y = mustRun(t, 13, "QuantizeLinear", nil, f32([]int64{3}, 1, -1, 0), f32(nil, 0), ints(ir.Int8, nil, 5))
	checkInts(t, "zero scale", y, ir.Int8, []int64{3}, 127, -128, 5)
	y = mustRun(t, 13, "QuantizeLinear", nil, ints(ir.Int32, []int64{2}, 1000, -7), f32(nil, 10))
	checkInts(t, "int32 input", y, ir.Uint8, []int64{2}, 100, 0)
}

func TestQuantizePerAxisAndBlocked(t *testing.T) {
	x := f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6)
	y := mustRun(t, 13, "QuantizeLinear", nil, x, f32([]int64{3}, 1, 2, 4), ints(ir.Uint8, []int64{3}, 0, 1, 2))
	checkInts(t, "axis 1", y, ir.Uint8, []int64{2, 3}, 1, 2, 3, 4, 3, 4)
	y = mustRun(t, 13, "QuantizeLinear", []*ir.Attribute{aInt("axis", 0)}, x, f32([]int64{2}, 1, 2))
	checkInts(t, "axis 0", y, ir.Uint8, []int64{2, 3}, 1, 2, 3, 2, 2, 3)
	y = mustRun(t, 13, "QuantizeLinear", []*ir.Attribute{aInt("axis", -2)}, x, f32([]int64{2}, 1, 2))
	checkInts(t, "axis -2", y, ir.Uint8, []int64{2, 3}, 1, 2, 3, 2, 2, 3)

	blk := []*ir.Attribute{aInt("axis", 1), aInt("block_size", 2)}
	x = f32([]int64{2, 4}, 1, 2, 3, 4, 5, 6, 7, 8)
	y = mustRun(t, 21, "QuantizeLinear", blk, x, f32([]int64{2, 2}, 1, 2, 4, 8))
	checkInts(t, "blocked", y, ir.Uint8, []int64{2, 4}, 1, 2, 2, 2, 1, 2, 1, 1)
	// a last, shorter block
	y = mustRun(t, 21, "QuantizeLinear", blk, f32([]int64{1, 5}, 1, 2, 3, 4, 5), f32([]int64{1, 3}, 1, 2, 4))
	checkInts(t, "blocked remainder", y, ir.Uint8, []int64{1, 5}, 1, 2, 2, 2, 1)
	y = mustRun(t, 21, "QuantizeLinear", []*ir.Attribute{aInt("axis", 0), aInt("block_size", 3)},
		f32([]int64{4, 1}, 1, 2, 3, 4), f32([]int64{2, 1}, 1, 2))
	checkInts(t, "blocked axis 0", y, ir.Uint8, []int64{4, 1}, 1, 2, 3, 2)
	y = mustRun(t, 21, "QuantizeLinear", blk, f32([]int64{1, 4}, 1, 2, 3, 4), f32([]int64{1, 1}, 2))
	checkInts(t, "blocked, one-element scale", y, ir.Uint8, []int64{1, 4}, 0, 1, 2, 2)
	y = mustRun(t, 21, "QuantizeLinear", blk, x, f32([]int64{2, 2}, 1, 2, 4, 8), ints(ir.Int8, []int64{2, 2}, 0, -1, 1, -2))
	checkInts(t, "blocked zero point", y, ir.Int8, []int64{2, 4}, 1, 2, 1, 1, 2, 3, -1, -1)
}

func TestQuantizeSmallTypes(t *testing.T) {
	y := mustRun(t, 21, "QuantizeLinear", []*ir.Attribute{aInt("output_dtype", int64(ir.Int4))},
		f32([]int64{4}, -100, -8.5, 7.5, 100), f32(nil, 1))
	checkInts(t, "int4", y, ir.Int4, []int64{4}, -8, -8, 7, 7)
	y = mustRun(t, 25, "QuantizeLinear", []*ir.Attribute{aInt("output_dtype", int64(ir.Uint2))},
		f32([]int64{4}, -1, 1.5, 2.5, 9), f32(nil, 1))
	checkInts(t, "uint2", y, ir.Uint2, []int64{4}, 0, 2, 2, 3)
	y = mustRun(t, 25, "QuantizeLinear", nil, f32([]int64{4}, -3, -1.5, 0.5, 5), f32(nil, 1), ints(ir.Int2, nil, 0))
	checkInts(t, "int2", y, ir.Int2, []int64{4}, -2, -2, 0, 1)
	y = mustRun(t, 21, "QuantizeLinear", []*ir.Attribute{aInt("output_dtype", int64(ir.Uint16))},
		f32([]int64{2}, 70000, 3.5), f32(nil, 1))
	checkInts(t, "uint16", y, ir.Uint16, []int64{2}, 65535, 4)
}

func TestQuantizeFloat8(t *testing.T) {
	zp := ir.NewTensor(ir.Float8E4M3FN, nil)
	x := f32([]int64{4}, 1e6, -1e6, 896, math.Copysign(0, -1))
	y := mustRun(t, 19, "QuantizeLinear", nil, x, f32(nil, 2), zp)
	checkCodes(t, "e4m3fn saturate", y, 0x7e, 0xfe, 0x7e, 0x80)
	y = mustRun(t, 19, "QuantizeLinear", []*ir.Attribute{aInt("saturate", 0)}, x, f32(nil, 2), zp)
	checkCodes(t, "e4m3fn no saturate", y, 0x7f, 0xff, 0x7e, 0x80)
	y = mustRun(t, 19, "QuantizeLinear", []*ir.Attribute{aInt("saturate", 0)}, x, f32(nil, 2), ir.NewTensor(ir.Float8E5M2FNUZ, nil))
	checkCodes(t, "e5m2fnuz no saturate", y, 0x80, 0x80, 0x63, 0x00)
	// float4: the zero point is added (ONNX's reference), so -0 becomes +0
	y = mustRun(t, 21, "QuantizeLinear", nil, f32([]int64{4}, math.Copysign(0, -1), 5, -100, 2.5), f32(nil, 1), ir.NewTensor(ir.Float4E2M1, nil))
	checkCodes(t, "float4", y, 0x0, 0x6, 0xf, 0x4)
}

func TestQuantizePrecision(t *testing.T) {
	x := f32([]int64{1}, 2049)
	zp := ints(ir.Int16, nil, 0)
	y := mustRun(t, 25, "QuantizeLinear", nil, x, f32(nil, 1), zp)
	checkInts(t, "float32 division", y, ir.Int16, []int64{1}, 2049)
	y = mustRun(t, 25, "QuantizeLinear", []*ir.Attribute{aInt("precision", int64(ir.Float16))}, x, f32(nil, 1), zp)
	checkInts(t, "float16 precision", y, ir.Int16, []int64{1}, 2048)
	// the scale's type sets the precision when the attribute is absent
	h := ir.FromFloat64s(ir.Float16, nil, []float64{1})
	y = mustRun(t, 19, "QuantizeLinear", nil, x, h, zp)
	checkInts(t, "float16 scale", y, ir.Int16, []int64{1}, 2048)
	wantErr(t, "precision", 25, "QuantizeLinear", []*ir.Attribute{aInt("precision", int64(ir.Int32))}, x, f32(nil, 1), zp)
}

func TestQuantizeErrors(t *testing.T) {
	x := f32([]int64{2, 3}, 1, 2, 3, 4, 5, 6)
	s3 := f32([]int64{3}, 1, 1, 1)
	wantErr(t, "zero point shape", 13, "QuantizeLinear", nil, x, s3, ints(ir.Uint8, []int64{2}, 0, 0))
	wantErr(t, "per-axis scale", 13, "QuantizeLinear", nil, x, f32([]int64{2}, 1, 1))
	wantErr(t, "out of range", 13, "QuantizeLinear", []*ir.Attribute{aInt("axis", 5)}, x, s3)
	wantErr(t, "blocked scale", 21, "QuantizeLinear", []*ir.Attribute{aInt("block_size", 2)}, x, f32([]int64{2, 3}, 1, 1, 1, 1, 1, 1))
	wantErr(t, "negative", 21, "QuantizeLinear", []*ir.Attribute{aInt("block_size", -1)}, x, s3)
	wantErr(t, "differs", 21, "QuantizeLinear", []*ir.Attribute{aInt("output_dtype", int64(ir.Int8))}, x, s3, ints(ir.Uint8, []int64{3}, 0, 0, 0))
	wantErr(t, "cannot quantize", 21, "QuantizeLinear", []*ir.Attribute{aInt("output_dtype", int64(ir.Float32))}, x, s3)
	wantErr(t, "want float32", 13, "QuantizeLinear", nil, ints(ir.Int8, []int64{1}, 1), f32(nil, 1))
	wantErr(t, "y_scale is", 13, "QuantizeLinear", nil, x, ints(ir.Int8, nil, 1))
	wantErr(t, "per-tensor", 10, "QuantizeLinear", nil, x, s3)
	wantErr(t, "missing", 13, "QuantizeLinear", nil, x)
	wantErr(t, "per-axis scale", 13, "QuantizeLinear", nil, x, f32([]int64{1, 3}, 1, 1, 1))
}

func TestDequantize(t *testing.T) {
	y := mustRun(t, 13, "DequantizeLinear", nil, ints(ir.Uint8, []int64{4}, 0, 3, 128, 255), f32(nil, 2), ints(ir.Uint8, nil, 128))
	checkFloats(t, "uint8", y, ir.Float32, []int64{4}, -256, -250, 0, 254)
	y = mustRun(t, 13, "DequantizeLinear", []*ir.Attribute{aInt("axis", 0)},
		ints(ir.Int8, []int64{2, 2}, 1, 2, 3, 4), f32([]int64{2}, 0.5, 2), ints(ir.Int8, []int64{2}, 1, -1))
	checkFloats(t, "per axis", y, ir.Float32, []int64{2, 2}, 0, 0.5, 8, 10)
	y = mustRun(t, 21, "DequantizeLinear", []*ir.Attribute{aInt("block_size", 2)},
		ints(ir.Uint8, []int64{1, 4}, 1, 2, 3, 4), f32([]int64{1, 2}, 1, 10), ints(ir.Uint8, []int64{1, 2}, 0, 1))
	checkFloats(t, "blocked", y, ir.Float32, []int64{1, 4}, 1, 2, 20, 30)
	y = mustRun(t, 13, "DequantizeLinear", nil, ints(ir.Int32, []int64{2}, -5, 7), f32(nil, 0.5))
	checkFloats(t, "int32", y, ir.Float32, []int64{2}, -2.5, 3.5)
	// float16 scale: float32 product, rounded to float16 (0.1 is 0.0999755859375 in half)
	h := ir.FromFloat64s(ir.Float16, nil, []float64{0.1})
	y = mustRun(t, 19, "DequantizeLinear", nil, ints(ir.Int16, []int64{1}, 3000), h)
	checkFloats(t, "float16 scale", y, ir.Float16, []int64{1}, 300)
	y = mustRun(t, 23, "DequantizeLinear", []*ir.Attribute{aInt("output_dtype", int64(ir.Float16))}, ints(ir.Uint8, []int64{1}, 255), f32(nil, 0.1))
	checkFloats(t, "output_dtype", y, ir.Float16, []int64{1}, 25.5)
	y = mustRun(t, 19, "DequantizeLinear", nil, ir.FromFloat64s(ir.Float8E4M3FN, []int64{3}, []float64{1, -2, 448}), f32(nil, 2))
	checkFloats(t, "float8", y, ir.Float32, []int64{3}, 2, -4, 896)
	y = mustRun(t, 21, "DequantizeLinear", nil, ir.FromFloat64s(ir.Float4E2M1, []int64{3}, []float64{1, -1.5, 6}), f32(nil, 2),
		ir.FromFloat64s(ir.Float4E2M1, []int64{1}, []float64{0.5}))
	checkFloats(t, "float4", y, ir.Float32, []int64{3}, 1, -4, 11)
	y = mustRun(t, 21, "DequantizeLinear", nil, ints(ir.Int4, []int64{2}, -8, 7), f32(nil, 1), ints(ir.Int4, []int64{1}, 1))
	checkFloats(t, "int4", y, ir.Float32, []int64{2}, -9, 6)
	y = mustRun(t, 25, "DequantizeLinear", nil, ints(ir.Uint2, []int64{4}, 0, 1, 2, 3), f32(nil, 1), ints(ir.Uint2, []int64{1}, 1))
	checkFloats(t, "uint2", y, ir.Float32, []int64{4}, -1, 0, 1, 2)

	x := ints(ir.Uint8, []int64{2}, 1, 2)
	wantErr(t, "zero point is", 13, "DequantizeLinear", nil, x, f32(nil, 1), ints(ir.Int8, nil, 0))
	wantErr(t, "not a quantized type", 13, "DequantizeLinear", nil, f32([]int64{1}, 1), f32(nil, 1))
	wantErr(t, "output type", 23, "DequantizeLinear", []*ir.Attribute{aInt("output_dtype", int64(ir.Int8))}, x, f32(nil, 1))
	wantErr(t, "per-axis scale", 13, "DequantizeLinear", []*ir.Attribute{aInt("axis", 0)}, x, f32([]int64{3}, 1, 1, 1))
}

func TestQuantizeInfer(t *testing.T) {
	n := &ir.Node{Name: "node1", OpType: "QuantizeLinear", Inputs: []string{"x", "s"}, Outputs: []string{"y"},
		Attrs: []*ir.Attribute{aInt("output_dtype", int64(ir.Int4))}}
	in := []*ir.Type{ir.TensorType(ir.Float32, ir.Shape{ir.Sym("n"), ir.D(4)}), ir.TensorType(ir.Float32, ir.Shape{})}
	c := ops.NewInferCtx(n, 21, in, make([]*ir.Tensor, 2), make([]ir.Shape, 2))
	if err := quantizeInfer(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Out[0].String(); got != "int4[n,4]" {
		t.Errorf("QuantizeLinear type %s, want int4[n,4]", got)
	}
	n = &ir.Node{Name: "node1", OpType: "DequantizeLinear", Inputs: []string{"x", "s"}, Outputs: []string{"y"}}
	in = []*ir.Type{ir.TensorType(ir.Int8, ir.Shape{ir.Sym("n")}), ir.TensorType(ir.Float16, ir.Shape{})}
	c = ops.NewInferCtx(n, 21, in, make([]*ir.Tensor, 2), make([]ir.Shape, 2))
	if err := dequantizeInfer(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Out[0].String(); got != "float16[n]" {
		t.Errorf("DequantizeLinear type %s, want float16[n]", got)
	}
}

func TestDynamicQuantize(t *testing.T) {
	dq := func(x *ir.Tensor) []*ir.Tensor {
		t.Helper()
		outs, err := run(11, "DynamicQuantizeLinear", nil, x)
		if err != nil {
			t.Fatal(err)
		}
		return outs
	}
	// the spec's example: range [-3, 2], scale 5/255, zero point 153
	o := dq(f32([]int64{6}, 0, 2, -3, -2.5, 1.34, 0.5))
	checkInts(t, "y", o[0], ir.Uint8, []int64{6}, 153, 255, 0, 26, 221, 179)
	checkFloats(t, "scale", o[1], ir.Float32, nil, float64(float32(5)/255))
	checkInts(t, "zero point", o[2], ir.Uint8, nil, 153)
	o = dq(f32([]int64{2}, 0, 0))
	checkFloats(t, "zero range scale", o[1], ir.Float32, nil, 1)
	checkInts(t, "zero range", o[0], ir.Uint8, []int64{2}, 0, 0)
	o = dq(f32([]int64{4}, 0, 2.5, 3.5, 255)) // scale exactly 1: ties go to even
	checkInts(t, "positive", o[0], ir.Uint8, []int64{4}, 0, 2, 4, 255)
	checkInts(t, "positive zp", o[2], ir.Uint8, nil, 0)
	o = dq(f32([]int64{2}, -255, -1.5)) // range includes 0: max is 0, zero point 255
	checkInts(t, "negative", o[0], ir.Uint8, []int64{2}, 0, 253)
	checkInts(t, "negative zp", o[2], ir.Uint8, nil, 255)
	o = dq(f32([]int64{2}, math.NaN(), 255)) // NaN is left out of the range and gives the zero point
	checkInts(t, "nan", o[0], ir.Uint8, []int64{2}, 0, 255)
	o = dq(f32([]int64{0}))
	checkInts(t, "empty zp", o[2], ir.Uint8, nil, 0)
	wantErr(t, "want float32", 11, "DynamicQuantizeLinear", nil, ir.FromFloat64s(ir.Float16, []int64{1}, []float64{1}))
}
