package engine

import "github.com/kilnml/kiln/ir"

// ValueView returns the context's current tensor for value i of the plan
// (nil when out of range or not yet shaped). It is a debug tap for tools
// that compare an engine's layers with a reference (kiln compare
// --per-layer): call it from a Profiler's StepDone to read the outputs of
// the step that just ran, before a later step reuses their arena memory.
// It changes nothing in the plan, so fusion and precisions stay as built,
// and costs nothing when unused.
func (c *Context) ValueView(i int) *ir.Tensor {
	if i < 0 || i >= len(c.views) {
		return nil
	}
	return c.views[i]
}
