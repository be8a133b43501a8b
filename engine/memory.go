package engine

import (
	"fmt"
	"sort"

	"github.com/kilnml/kiln/ir"
)

// PlanMemory lays out activation memory for every profile of the plan: it
// runs the shape pass at the profile's maximum input shapes, computes each
// activation's lifetime (from the step that writes it to the last step that
// reads it; engine outputs live to the end) and packs them into one arena
// with a best-fit free list, so values whose lifetimes do not overlap share
// memory. Weights, inputs and shape-step results stay outside the arena.
func PlanMemory(p *Plan) error {
	nv := len(p.Values)
	for k := range p.Profiles {
		pr := &p.Profiles[k]
		// Provisional layout: every value its own slot, big enough, so that
		// the shape pass can run.
		pr.Offsets = make([]int64, nv)
		pr.Sizes = make([]int64, nv)
		for i := range pr.Offsets {
			pr.Offsets[i] = -1
		}
		pr.ArenaSize = 0
		e, err := NewEngine(p)
		if err != nil {
			return err
		}
		c := e.NewContext()
		sizes, err := c.sizesAt(k)
		if err != nil {
			return fmt.Errorf("profile %d at its maximum shapes: %w", k, err)
		}
		first, last := lifetimes(p)
		assign(pr, sizes, first, last)
	}
	return nil
}

// sizesAt returns the byte size of every arena value at profile k's max shapes.
func (c *Context) sizesAt(k int) ([]int64, error) {
	p := c.e.plan
	pr := &p.Profiles[k]
	for i, b := range p.Inputs {
		dims := pr.Max[b.Name]
		t := ir.NewTensor(b.DType, dims)
		c.inputs[i] = t
	}
	// Unbounded provisional slots: size checks pass, data is never touched.
	for i := range pr.Sizes {
		pr.Sizes[i] = 1 << 62
		pr.Offsets[i] = 0
	}
	pr.ArenaSize = 1 << 62
	c.profile = k
	c.arena = []byte{} // never indexed: views are rebuilt below
	sizes := make([]int64, len(p.Values))
	err := c.shapePass(func(idx int, size int64) { sizes[idx] = size })
	for i := range pr.Offsets {
		pr.Offsets[i], pr.Sizes[i] = -1, 0
	}
	pr.ArenaSize = 0
	c.arena = nil
	return sizes, err
}

// lifetimes returns, per value, the first and last step index touching it
// (-1 when no step writes it).
func lifetimes(p *Plan) (first, last []int) {
	nv := len(p.Values)
	first, last = make([]int, nv), make([]int, nv)
	for i := range first {
		first[i], last[i] = -1, -1
	}
	for si, s := range p.Steps {
		if s.ShapeStep {
			continue
		}
		for _, v := range s.Outputs {
			if first[v] < 0 {
				first[v] = si
			}
			last[v] = max(last[v], si)
		}
		for _, v := range s.Inputs {
			if v >= 0 {
				last[v] = max(last[v], si)
			}
		}
	}
	for _, b := range p.Outputs {
		last[b.Value] = len(p.Steps)
	}
	return first, last
}

const arenaAlign = 64

type block struct{ off, size int64 }

// assign packs values into an arena, best fit, in order of first write.
func assign(pr *Profile, sizes []int64, first, last []int) {
	type item struct {
		v           int
		first, last int
		size        int64
	}
	var items []item
	for v := range sizes {
		if first[v] >= 0 && sizes[v] >= 0 {
			sz := (sizes[v] + arenaAlign - 1) / arenaAlign * arenaAlign
			items = append(items, item{v, first[v], last[v], sz})
			pr.NaiveSize += sz
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].first < items[j].first })
	var free []block
	var top int64
	type live struct {
		b    block
		last int
	}
	var active []live
	for _, it := range items {
		// Release blocks whose values are dead before this step.
		kept := active[:0]
		for _, a := range active {
			if a.last < it.first {
				free = release(free, a.b)
			} else {
				kept = append(kept, a)
			}
		}
		active = kept
		best := -1
		for i, f := range free {
			if f.size >= it.size && (best < 0 || f.size < free[best].size) {
				best = i
			}
		}
		var b block
		if best >= 0 {
			b = block{free[best].off, it.size}
			if rest := free[best].size - it.size; rest > 0 {
				free[best] = block{free[best].off + it.size, rest}
			} else {
				free = append(free[:best], free[best+1:]...)
			}
		} else {
			b = block{top, it.size}
			top += it.size
		}
		pr.Offsets[it.v], pr.Sizes[it.v] = b.off, sizes[it.v]
		active = append(active, live{b, it.last})
	}
	pr.ArenaSize = top
}

// release returns a block to the free list, merging neighbours.
func release(free []block, b block) []block {
	free = append(free, b)
	sort.Slice(free, func(i, j int) bool { return free[i].off < free[j].off })
	out := free[:1]
	for _, f := range free[1:] {
		l := &out[len(out)-1]
		if l.off+l.size == f.off {
			l.size += f.size
		} else {
			out = append(out, f)
		}
	}
	return out
}
