// Package layerdebug finds where a quantized or reduced-precision engine
// loses accuracy: it compares every layer output of an engine with the same
// tensor of the float graph (through debug taps that leave the engine as
// built), ranks quantized layers by the error they add (the blame table),
// measures per-layer sensitivity and searches for the set of layers to keep
// in higher precision that meets an accuracy budget at the lowest latency.
package layerdebug

import (
	"encoding/json"
	"regexp"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// suffixes the builder and quant/qdq append to the tensors they rewrite
// (quantized copies, fp16 copies, uniquifying counters).
var suffixRE = regexp.MustCompile(`(__kq\d+|_quantized|_dequantized|_fp16|_fp32|_bf16|_float16|_float32|_bfloat16|_\d+)$`)

// OriginalName maps an engine value name back to the tensor of the source
// graph it stands for: the name itself when known, else the name with the
// builder's suffixes stripped one by one. "" when nothing matches.
func OriginalName(name string, known func(string) bool) string {
	for n := name; n != ""; {
		if known(n) {
			return n
		}
		loc := suffixRE.FindStringIndex(n)
		if loc == nil {
			return ""
		}
		n = n[:loc[0]]
	}
	return ""
}

// isCode reports whether values of this type are quantized codes that need
// a scale to mean anything.
func isCode(dt ir.DType) bool {
	switch dt {
	case ir.Int8, ir.Uint8, ir.Float8E4M3FN, ir.Float8E4M3FNUZ, ir.Float8E5M2, ir.Float8E5M2FNUZ:
		return true
	}
	return false
}

// reformatOps change a value's format, not its meaning.
var reformatOps = map[string]bool{"QuantizeLinear": true, "DequantizeLinear": true, "Cast": true}

// isReformat reports whether a step only converts formats.
func isReformat(s *engine.Step) bool {
	return len(s.OpTypes) == 1 && reformatOps[s.OpTypes[0]]
}

// Affine is how a value's codes map to real numbers: (code − Zero)·Scale.
type Affine struct{ Scale, Zero float64 }

// Real is the real number a code stands for, rounded to float32 as a
// DequantizeLinear computes it (kiln's scales are float32), so that a
// correct engine's codes compare equal to the reference graph's.
func (a Affine) Real(code float64) float64 {
	return float64(float32(code-a.Zero) * float32(a.Scale))
}

// Scales returns the dequantization scale of every value of p that holds
// quantized codes (see CodeParams).
func Scales(p *engine.Plan) map[int]float64 {
	sc := map[int]float64{}
	for v, a := range CodeParams(p) {
		sc[v] = a.Scale
	}
	return sc
}

// CodeParams returns the dequantization parameters of every value of p
// that holds quantized codes: a quantized layer's output scale and zero
// point (y_scale, y_zero in its parameters), a QuantizeLinear reformat's
// (its parameters, or its scale and zero point weights), else (MaxPool,
// Reshape, Relu over codes) those of the step's first coded input. Values
// whose scale cannot be found are absent.
func CodeParams(p *engine.Plan) map[int]Affine {
	sc := map[int]Affine{}
	for si := range p.Steps {
		s := &p.Steps[si]
		var own Affine
		if v, ok := findNumber(s.Params, "y_scale"); ok && v > 0 {
			own.Scale = v
			own.Zero, _ = findNumber(s.Params, "y_zero")
		} else if len(s.OpTypes) == 1 && s.OpTypes[0] == "QuantizeLinear" {
			if v, ok := findNumber(s.Params, "scale"); ok && v > 0 {
				own.Scale = v
				own.Zero, _ = findNumber(s.Params, "zero")
			} else if w, ok := scalarWeight(p, s, 1); ok {
				own.Scale = w
				own.Zero, _ = scalarWeight(p, s, 2)
			}
		}
		if own.Scale == 0 {
			for _, in := range s.Inputs {
				if v, ok := sc[in]; ok && in >= 0 {
					own = v
					break
				}
			}
		}
		if own.Scale == 0 {
			continue
		}
		for _, o := range s.Outputs {
			if isCode(p.Values[o].DType) {
				sc[o] = own
			}
		}
	}
	return sc
}

// scalarWeight is the value of a step's input i when it is a one-element
// weight.
func scalarWeight(p *engine.Plan, s *engine.Step, i int) (float64, bool) {
	if len(s.Inputs) <= i || s.Inputs[i] < 0 {
		return 0, false
	}
	if w := p.Values[s.Inputs[i]].Weight; w >= 0 && p.Weights[w].Len() == 1 {
		return p.Weights[w].Float64At(0), true
	}
	return 0, false
}

// findNumber looks for a number under key in a step's JSON parameters, at
// any depth: {"key": 0.1} or an attribute {"name": "key", "f": 0.1}.
func findNumber(params []byte, key string) (float64, bool) {
	if len(params) == 0 || params[0] != '{' && params[0] != '[' {
		return 0, false
	}
	var v any
	if json.Unmarshal(params, &v) != nil {
		return 0, false
	}
	return search(v, key)
}

func search(v any, key string) (float64, bool) {
	switch x := v.(type) {
	case map[string]any:
		if f, ok := x[key].(float64); ok {
			return f, true
		}
		if x["name"] == key {
			if f, ok := x["f"].(float64); ok {
				return f, true
			}
		}
		for _, c := range x {
			if f, ok := search(c, key); ok {
				return f, true
			}
		}
	case []any:
		for _, c := range x {
			if f, ok := search(c, key); ok {
				return f, true
			}
		}
	}
	return 0, false
}
