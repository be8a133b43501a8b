package builder

import (
	"fmt"
	"strings"

	"github.com/kilnml/kiln/engine"
)

// warnHostLayers names the layers that run on the host in a plan whose
// other layers run on a device (an engine.ExclusiveBackend such as CUDA):
// each adds a copy from the device and one back, which no tactic timing
// sees, so a user should know which ops the device lacks. Shape steps (run
// in the shape pass) do not count.
func (b *build) warnHostLayers() {
	device := map[string]bool{}
	for _, bk := range engine.Backends() {
		if engine.Exclusive(bk) {
			device[bk.Name()] = true
		}
	}
	if len(device) == 0 {
		return
	}
	onDevice, total := 0, 0
	var host []string
	for _, s := range b.plan.Steps {
		if s.ShapeStep {
			continue
		}
		total++
		if backend, _, _ := strings.Cut(s.Tactic, "."); device[backend] {
			onDevice++
			continue
		}
		host = append(host, fmt.Sprintf("%s (%s, %s)", s.Name, strings.Join(s.OpTypes, "+"), s.Tactic))
	}
	if onDevice > 0 && len(host) > 0 {
		b.rep.Warnings = append(b.rep.Warnings, fmt.Sprintf("%d of %d layers run on the CPU, each with a copy from the device and one back (the device backend offers no tactic for them that lowers): %s",
			len(host), total, strings.Join(host, "; ")))
	}
}
