package builder

import (
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/passes"
)

// PoolFusionVeto is implemented by a backend that must not see convs with
// a fused pool (kiln's pool attribute) while it is enabled: the builder
// then leaves MaxPool as its own layer. (The CUDA backend has no kernel
// for the fused pool.)
type PoolFusionVeto interface {
	VetoesPoolFusion() bool
}

// fusePools folds 2×2/2 max pools into the convs they read
// (passes.FusePools), after precision assignment so that quantized convs
// fuse too and calibration ran on the unfused graph.
func (b *build) fusePools() error {
	for _, bk := range engine.Backends() {
		if v, ok := bk.(PoolFusionVeto); ok && v.VetoesPoolFusion() {
			return nil
		}
	}
	_, err := passes.FusePools(b.m, passes.Options{Log: b.cfg.Log, Fusions: &b.rep.Fusions})
	return err
}
