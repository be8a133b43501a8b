package engine

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// prepare runs the shape pass for the bound inputs: choose a profile,
// compute every value's dims (executing shape steps), check that every
// activation fits its planned slot, and lay out the views in the arena.
func (c *Context) prepare() error {
	p := c.e.plan
	if c.profile < 0 || !c.inProfile(c.profile) {
		found := -1
		for k := range p.Profiles {
			if c.inProfile(k) {
				found = k
				break
			}
		}
		if found < 0 {
			return c.profileError()
		}
		if found != c.profile {
			c.profile, c.arena = found, nil
		}
	}
	if c.arena == nil {
		c.arena = ir.AlignedBytes(p.Profiles[c.profile].ArenaSize)
	}
	if err := c.shapePass(nil); err != nil {
		return err
	}
	c.shapeOK = true
	return nil
}

// shapePass computes every value's dims for the bound inputs, runs shape
// steps, and points activation views into the arena. record, when set, is
// told the byte size of every arena value (the memory planner uses it).
func (c *Context) shapePass(record func(idx int, size int64)) error {
	p := c.e.plan
	pr := &p.Profiles[c.profile]
	for i, b := range p.Inputs {
		v := p.Values[b.Value]
		c.dims[b.Value] = c.inputs[i].Dims
		// Data stays nil during the shape pass: only weights and shape-step
		// results carry values kernels may read to compute shapes.
		c.views[b.Value] = &ir.Tensor{Name: v.Name, DType: v.DType, Dims: c.inputs[i].Dims}
	}
	type slot struct{ idx, off, size int64 }
	var arenaSlots []slot
	var in, out []*ir.Tensor
	for si := range p.Steps {
		s := &p.Steps[si]
		in = in[:0]
		for _, idx := range s.Inputs {
			if idx < 0 {
				in = append(in, nil)
				continue
			}
			t := c.views[idx]
			if t == nil {
				return fmt.Errorf("layer %q: input value %q has no shape (plan bug)", s.Name, p.Values[idx].Name)
			}
			in = append(in, t)
		}
		dims, err := c.e.kernels[si].Shapes(in)
		if err != nil {
			return fmt.Errorf("layer %q: %w", s.Name, err)
		}
		if len(dims) != len(s.Outputs) {
			return fmt.Errorf("layer %q: kernel gave %d output shapes for %d outputs", s.Name, len(dims), len(s.Outputs))
		}
		out = out[:0]
		for k, idx := range s.Outputs {
			v := p.Values[idx]
			n, err := ir.NumElements(dims[k])
			if err != nil {
				return fmt.Errorf("layer %q: output %q: %w", s.Name, v.Name, err)
			}
			size := v.DType.ByteSize(n)
			t := &ir.Tensor{Name: v.Name, DType: v.DType, Dims: dims[k]}
			if record != nil && !s.ShapeStep {
				record(idx, size)
			}
			if s.ShapeStep {
				t.Data = ir.AlignedBytes(size)
			} else {
				off, room := pr.Offsets[idx], pr.Sizes[idx]
				if off < 0 || size > room {
					return fmt.Errorf("layer %q: output %q needs %d bytes at shape %v, the plan reserved %d: input shapes exceed optimization profile %d",
						s.Name, v.Name, size, dims[k], room, c.profile)
				}
				arenaSlots = append(arenaSlots, slot{int64(idx), off, size})
			}
			c.dims[idx] = dims[k]
			c.views[idx] = t
			out = append(out, t)
		}
		if s.ShapeStep {
			if err := c.e.kernels[si].Run(c.exec, in, out); err != nil {
				return fmt.Errorf("layer %q (shape computation): %w", s.Name, err)
			}
		}
	}
	if record != nil {
		return nil
	}
	for _, sl := range arenaSlots {
		c.views[sl.idx].Data = c.arena[sl.off : sl.off+sl.size]
	}
	return nil
}

func (c *Context) inProfile(k int) bool {
	pr := &c.e.plan.Profiles[k]
	for i, b := range c.e.plan.Inputs {
		mn, mx := pr.Min[b.Name], pr.Max[b.Name]
		d := c.inputs[i].Dims
		if len(mn) != len(d) || len(mx) != len(d) {
			return false
		}
		for j := range d {
			if d[j] < mn[j] || d[j] > mx[j] {
				return false
			}
		}
	}
	return true
}

func (c *Context) profileError() error {
	p := c.e.plan
	msg := "input shapes fit no optimization profile:"
	for i, b := range p.Inputs {
		msg += fmt.Sprintf(" %s=%v", b.Name, c.inputs[i].Dims)
	}
	for k, pr := range p.Profiles {
		msg += fmt.Sprintf("; profile %d:", k)
		for _, b := range p.Inputs {
			msg += fmt.Sprintf(" %s in %v..%v", b.Name, pr.Min[b.Name], pr.Max[b.Name])
		}
	}
	return fmt.Errorf("%s", msg)
}
