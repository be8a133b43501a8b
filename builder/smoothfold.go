package builder

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/smooth"
)

// foldSmoothingMuls merges each SmoothQuant Mul(X, 1/s) whose only reader
// is a per-tensor QuantizeLinear (scale S) into that quantizer: a
// QuantizeLinear of X along the last axis with scales S·s_c gives the codes
// of X/s at scale S (up to the float32 rounding of the product), so the
// quantized layer after it is unchanged and the engine makes one pass over
// X instead of two. Run after convertQDQ; Muls read by anything else (the
// dynamic INT8 layers, float layers) stay.
func foldSmoothingMuls(m *ir.Model, sites []smooth.Site, logf func(string, ...any)) {
	smoothed := map[string]bool{}
	for _, s := range sites {
		smoothed[s.Activation] = true
	}
	g := m.Graph
	inits := g.InitializerMap()
	cons := g.Consumers()
	outs := map[string]bool{}
	for _, o := range g.Outputs {
		outs[o.Name] = true
	}
	used := map[string]bool{}
	for _, t := range g.Initializers {
		used[t.Name] = true
	}
	fresh := func(base string) string {
		name := base
		for i := 1; used[name]; i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		used[name] = true
		return name
	}
	drop := map[*ir.Node]bool{}
	for _, mul := range g.Nodes {
		if mul.OpType != "Mul" || mul.Domain != "" || len(mul.Inputs) != 2 || len(mul.Outputs) != 1 || !smoothed[mul.Inputs[0]] {
			continue
		}
		inv := inits[mul.Inputs[1]]
		y := mul.Outputs[0]
		if inv == nil || inv.DType != ir.Float32 || inv.Rank() != 1 || outs[y] || len(cons[y]) != 1 {
			continue
		}
		q := cons[y][0]
		if q.OpType != "QuantizeLinear" || q.Domain != "" || len(q.Inputs) < 2 || q.Inputs[0] != y || q.Attr("block_size") != nil {
			continue
		}
		scale := inits[q.Inputs[1]]
		var zp *ir.Tensor
		if len(q.Inputs) > 2 && q.Inputs[2] != "" {
			if zp = inits[q.Inputs[2]]; zp == nil || zp.Len() != 1 {
				continue
			}
		}
		if scale == nil || scale.DType != ir.Float32 || scale.Len() != 1 {
			continue
		}
		k := inv.Len()
		ns := ir.NewTensor(ir.Float32, []int64{k})
		for c := range k {
			ns.F32()[c] = float32(float64(scale.F32()[0]) / inv.Float64At(c))
		}
		ns.Name = fresh(q.Name + "_channel_scale")
		g.Initializers = append(g.Initializers, ns)
		q.Inputs = []string{mul.Inputs[0], ns.Name}
		if zp != nil {
			nz := ir.NewTensor(zp.DType, []int64{k})
			for c := range k {
				nz.SetFloat64At(c, zp.Float64At(0))
			}
			nz.Name = fresh(q.Name + "_channel_zero_point")
			g.Initializers = append(g.Initializers, nz)
			q.Inputs = append(q.Inputs, nz.Name)
		}
		setAttr(q, &ir.Attribute{Name: "axis", Type: ir.AttrInt, I: -1})
		drop[mul] = true
		logf("Folding %s into %s (per-channel quantizer scales)", mul.Name, q.Name)
	}
	if len(drop) == 0 {
		return
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if !drop[n] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
	// The 1/s vectors nothing reads any more.
	reads := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			reads[in] = true
		}
	}
	inits2 := g.Initializers[:0]
	for _, t := range g.Initializers {
		if reads[t.Name] || outs[t.Name] || !isSmoothScale(t, drop) {
			inits2 = append(inits2, t)
		}
	}
	g.Initializers = inits2
}

// isSmoothScale: t is the 1/s input of a dropped Mul.
func isSmoothScale(t *ir.Tensor, dropped map[*ir.Node]bool) bool {
	for n := range dropped {
		if n.Inputs[1] == t.Name {
			return true
		}
	}
	return false
}
