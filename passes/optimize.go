package passes

import (
	"fmt"

	"github.com/kilnml/kiln/ir"
)

// Options configures the passes.
type Options struct {
	// Log receives one line per rewrite ("Fusing conv1 with relu1"); nil: quiet.
	Log func(format string, args ...any)
	// Fusions, when set, gets one line per fusion or folding into a layer.
	Fusions *[]string
	// MaxIterations bounds the rounds of Optimize (0: 8).
	MaxIterations int
}

// Pass is one optimization; Run returns how many rewrites it made.
type Pass struct {
	Name string
	Run  func(m *ir.Model, opt Options) (int, error)
}

// Pipeline lists the passes Optimize runs, in order.
func Pipeline() []Pass {
	return []Pass{
		{"float-transformer-qdq", FloatTransformerQDQ},
		{"constant-folding", FoldConstants},
		{"remove-noops", RemoveNoOps},
		{"shape-chains", SimplifyShapeChains},
		{"fold-batchnorm", FoldBatchNorm},
		{"fuse-layernorm", FuseLayerNorm},
		{"fuse-attention", FuseAttention},
		{"fuse-layers", FuseLayers},
		{"fuse-gelu", FuseGelu},
		{"dead-code", EliminateDeadCode},
	}
}

// Optimize runs the pipeline until no pass changes anything (or
// MaxIterations rounds). The model is rewritten in place; it must verify
// before and does after.
func Optimize(m *ir.Model, opt Options) error {
	if err := m.Verify(); err != nil {
		return fmt.Errorf("optimize: invalid graph:\n%w", err)
	}
	rounds := opt.MaxIterations
	if rounds <= 0 {
		rounds = 8
	}
	for range rounds {
		total := 0
		for _, p := range Pipeline() {
			n, err := p.Run(m, opt)
			if err != nil {
				return fmt.Errorf("pass %s: %w", p.Name, err)
			}
			total += n
		}
		if total == 0 {
			break
		}
	}
	if err := m.Verify(); err != nil {
		return fmt.Errorf("optimize left an invalid graph (a kiln bug):\n%w", err)
	}
	return nil
}
