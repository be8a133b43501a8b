package main

import (
	"testing"

	cudabackend "github.com/kilnml/kiln/backend/cuda"
)

// -rt's variants set the run-time switches they name (no GPU needed: they
// are process settings), and an unknown name is an error naming it.
func TestRTVariants(t *testing.T) {
	ev, pdl, gr := cudabackend.StepEvents(), cudabackend.PDL(), cudabackend.Graphs()
	t.Cleanup(func() { cudabackend.SetStepEvents(ev); cudabackend.SetPDL(pdl); cudabackend.SetGraphs(gr) })
	for _, c := range []struct {
		v                   string
		events, pdl, graphs bool
	}{
		{"events", true, false, false},
		{"lean", false, false, false},
		{"pdl", false, true, false},
		{"graph", false, false, true},
		{"graph+pdl", false, true, true},
	} {
		if err := rtSet(c.v); err != nil {
			t.Fatalf("%s: %v", c.v, err)
		}
		if cudabackend.StepEvents() != c.events || cudabackend.PDL() != c.pdl || cudabackend.Graphs() != c.graphs {
			t.Errorf("%s: events %v, pdl %v, graphs %v; want %v, %v, %v", c.v, cudabackend.StepEvents(), cudabackend.PDL(),
				cudabackend.Graphs(), c.events, c.pdl, c.graphs)
		}
	}
	if err := rtSet("fast"); err == nil {
		t.Error("an unknown variant was accepted")
	}
}
