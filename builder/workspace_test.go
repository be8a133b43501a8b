package builder

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/kilnml/kiln/backend/cpu"
	"github.com/kilnml/kiln/onnx"
)

// A workspace limit keeps tactics that need more scratch out of the race.
func TestWorkspaceLimitSkipsTactics(t *testing.T) {
	m, err := onnx.Load(filepath.Join(sharedDir(t), "models", "bench", "simplecnn.fp32.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	in := m.Graph.RealInputs()[0]
	shape := []int64{16, 1, 28, 28}
	var mu sync.Mutex
	var logs []string
	cfg := Config{Profiles: []Profile{{in.Name: {shape, shape, shape}}}, WorkspaceLimit: 1,
		Log: func(f string, a ...any) { mu.Lock(); logs = append(logs, f); mu.Unlock() }}
	if _, _, err := Build(m, nil, cfg); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(logs, "\n")
	if !strings.Contains(joined, "skipped") {
		t.Errorf("no tactic was skipped for the workspace limit; log:\n%s", joined)
	}
}
