package builder

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/passes"
)

// The graph optimizations of passes/ (folding, no-op removal, shape-chain
// simplification, BatchNormalization folding, layer fusion, dead code) run
// as the builder's "optimize" pass.
func init() {
	Passes = append(Passes, Pass{Name: "optimize", Run: func(m *ir.Model, cfg *Config, rep *Report) error {
		return passes.Optimize(m, passes.Options{Log: cfg.Log, Fusions: &rep.Fusions})
	}})
}
