package main

import (
	"io"
	"os"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/internal/cli"
)

func init() {
	// Plans go first: inspectPlan declines files that are not plans.
	inspectors = append([]func(string) (cli.Report, bool, error){inspectPlan}, inspectors...)
}

// isPlanFile reports whether path starts with the plan magic.
func isPlanFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	return engine.IsPlan(head[:n]), nil
}

func inspectPlan(path string) (cli.Report, bool, error) {
	ok, err := isPlanFile(path)
	if err != nil || !ok {
		return nil, false, nil // the ONNX inspector reports a missing file
	}
	p, err := engine.ReadPlanFile(path)
	if err != nil {
		return nil, true, err
	}
	var size int64
	if st, err := os.Stat(path); err == nil {
		size = st.Size()
	}
	e, loadErr := engine.NewEngine(p)
	var warnings []string
	if e != nil {
		warnings = e.Warnings
	}
	return cli.InspectPlan(path, size, p, warnings, loadErr), true, nil
}
