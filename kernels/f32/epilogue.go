package f32

import (
	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// Bias broadcast of an epilogue.
const (
	BiasNone   = iota
	BiasRow    // Bias[row]: conv channels
	BiasCol    // Bias[col]: Gemm/MatMul last axis
	BiasFull   // Bias indexed like Out: Gemm's C as a matrix
	BiasScalar // Bias[0]
)

// Epilogue turns accumulators into outputs: y = act(Alpha·acc + Beta·bias +
// resid) in float32 for float layers; for quantized layers (Q set) exactly
// kilnq.Layer.Epilogue and, with a y_scale, its QuantizeOut into QOut.
type Epilogue struct {
	Out    []float32 // float output: row r, column c at r*RS+c*CS; nil when QOut is used
	QOut   []byte    // 8-bit codes of quantized layers with y_scale > 0
	Out16  []uint16  // float16 output (FP16 layers: float32 math, one rounding at the store)
	RS, CS int       // output strides (CS 1, or RS 1 for transposed products)

	Bias     []float32
	BiasMode int
	Resid    []float32 // same indexing as Out; nil for none

	Alpha, Beta float32 // Gemm's; Scaled says whether they differ from 1
	Scaled      bool
	Act         kiln.Activation

	Q           *kilnq.Layer // quantized layer semantics, nil for float layers
	QChannelRow bool         // the channel selecting w_scales is the row (conv), else the column
}

func (e *Epilogue) bias(r, c int) float32 {
	switch e.BiasMode {
	case BiasFull:
		return e.Bias[r*e.RS+c*e.CS]
	case BiasRow:
		return e.Bias[r]
	case BiasCol:
		return e.Bias[c]
	case BiasScalar:
		return e.Bias[0]
	}
	return 0
}

// Act32 applies an activation to a float32 value as every CPU kernel and
// the quantized layers do (kiln.Activation.Apply32): GELU in float32
// (kiln.Gelu32, within kiln.Gelu32AbsErr + Gelu32RelErr·|x| of the float64
// reference), the others as the reference rounded to float32.
func Act32(a *kiln.Activation, y float32) float32 { return a.Apply32(y) }

// Store writes an mr×nr block of accumulators (row stride ldacc) whose top
// left is output row r0, column c0.
func (e *Epilogue) Store(acc []float32, ldacc, r0, c0, mr, nr int) {
	if e.Q != nil {
		e.storeQ(acc, ldacc, r0, c0, mr, nr)
		return
	}
	if e.Out != nil && !e.Scaled && e.CS == 1 && (e.BiasMode == BiasNone || e.BiasMode == BiasRow) && (e.Act.Kind == "" || e.Act.Kind == "Relu") {
		e.storeRows(acc, ldacc, r0, c0, mr, nr)
		return
	}
	for i := 0; i < mr; i++ {
		r := r0 + i
		a := acc[i*ldacc : i*ldacc+nr]
		for j, y := range a {
			c := c0 + j
			idx := r*e.RS + c*e.CS
			if e.Scaled {
				y = e.Alpha * y
				if e.BiasMode != BiasNone {
					y += e.Beta * e.bias(r, c)
				}
			} else if e.BiasMode != BiasNone {
				y += e.bias(r, c)
			}
			if e.Resid != nil {
				y += e.Resid[idx]
			}
			if e.Out16 != nil {
				e.Out16[idx] = floatx.F32ToF16(Act32(&e.Act, y))
				continue
			}
			e.Out[idx] = Act32(&e.Act, y)
		}
	}
}

// storeRows is Store's common case (conv layout, per-row bias, Relu or
// nothing) with the per-element decisions hoisted out of the loop; it
// computes exactly what the general path does.
func (e *Epilogue) storeRows(acc []float32, ldacc, r0, c0, mr, nr int) {
	relu := e.Act.Kind == "Relu"
	for i := 0; i < mr; i++ {
		r := r0 + i
		var b float32
		if e.BiasMode == BiasRow {
			b = e.Bias[r]
		}
		a := acc[i*ldacc : i*ldacc+nr]
		out := e.Out[r*e.RS+c0 : r*e.RS+c0+nr]
		var res []float32
		if e.Resid != nil {
			res = e.Resid[r*e.RS+c0 : r*e.RS+c0+nr]
		}
		for j, y := range a {
			if e.BiasMode != BiasNone {
				y += b
			}
			if res != nil {
				y += res[j]
			}
			if relu && !(y > 0 || y != y) {
				y = 0
			}
			out[j] = y
		}
	}
}

func (e *Epilogue) storeQ(acc []float32, ldacc, r0, c0, mr, nr int) {
	q := e.Q
	if (q.Act.Kind == "" || q.Act.Kind == "Relu") && q.YScale > 0 && (q.OutType == ir.Int8 || q.OutType == ir.Uint8) &&
		e.QChannelRow && (e.BiasMode == BiasNone || e.BiasMode == BiasRow) {
		e.storeQRows(acc, ldacc, r0, c0, mr, nr)
		return
	}
	for i := 0; i < mr; i++ {
		r := r0 + i
		for j := 0; j < nr; j++ {
			c := c0 + j
			ch := c
			if e.QChannelRow {
				ch = r
			}
			var b, z float32
			if e.BiasMode != BiasNone {
				b = e.bias(r, c)
			}
			idx := r*e.RS + c*e.CS
			if e.Resid != nil {
				z = e.Resid[idx]
			}
			y := q.Epilogue(acc[i*ldacc+j], ch, b, z)
			if q.YScale == 0 {
				e.Out[idx] = y
			} else {
				e.QOut[idx] = byte(q.QuantizeOut(y))
			}
		}
	}
}

// roundMagic rounds a float64 of magnitude below 2⁵¹ to an integer, half
// to even (the FPU's rounding of the addition); larger values come out
// within 2 of themselves, which the int8/uint8 clamp makes irrelevant.
const roundMagic = 0x1.8p52

// storeQRows is kilnq.Layer.Epilogue followed by QuantizeOut for int8/uint8
// outputs with Relu or no activation, the channel being the row: the same
// float32 operations in the same order, with the per-row scale and bias
// hoisted out of the loop.
func (e *Epilogue) storeQRows(acc []float32, ldacc, r0, c0, mr, nr int) {
	q := e.Q
	relu := q.Act.Kind == "Relu"
	lo, hi := float64(-128), float64(127)
	if q.OutType == ir.Uint8 {
		lo, hi = 0, 255
	}
	yz := float64(q.YZero)
	for i := 0; i < mr; i++ {
		r := r0 + i
		m := q.XScale * q.WScales[min(r, len(q.WScales)-1)]
		var b float32
		if e.BiasMode == BiasRow {
			b = e.Bias[r]
		}
		for j, a := range acc[i*ldacc : i*ldacc+nr] {
			idx := r*e.RS + (c0+j)*e.CS
			y := a * m
			y += b
			if e.Resid != nil {
				y += e.Resid[idx]
			}
			if relu && !(y > 0 || y != y) {
				y = 0
			}
			v := float64(y / q.YScale)
			v = (v + roundMagic) - roundMagic + yz
			switch {
			case v != v, v < lo:
				v = lo
			case v > hi:
				v = hi
			}
			e.QOut[idx] = byte(int32(v)) // two's complement for int8
		}
	}
}
