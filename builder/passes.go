package builder

import "github.com/kilnml/kiln/ir"

// Pass is one graph optimization run by the builder before lowering.
type Pass struct {
	Name string
	Run  func(m *ir.Model, cfg *Config, rep *Report) error
}

// Passes is the builder's pass pipeline, in order.
var Passes []Pass
