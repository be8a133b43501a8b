package cpu

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/onnx"
)

func tactics(p *engine.Plan) map[string]string {
	m := map[string]string{}
	for _, s := range p.Steps {
		m[s.Name] = s.Tactic
	}
	return m
}

// Non-deterministic builds time competing tactics (mobilenetv2's depthwise
// layers: direct vs im2col), write the timing cache, and a rebuild with
// the cache takes the cached choices without timing: an edited cache entry
// is obeyed.
func TestTimingCache(t *testing.T) {
	if raceOn {
		t.Skip("too slow under the race detector")
	}
	path := filepath.Join(sharedModels(t), "bench/mobilenetv2.fp32.onnx")
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cachePath := filepath.Join(t.TempDir(), "timing.json")
	var logs []string
	cfg := builder.Config{TimingCache: cachePath, Log: func(f string, a ...any) { logs = append(logs, f) }}
	p1, _, err := builder.Build(m, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Entries map[string]struct {
			Tactic string `json:"tactic"`
			Layer  string `json:"layer"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Entries) == 0 {
		t.Fatal("the timing cache is empty")
	}
	// Force the other tactic for every cached layer and rebuild.
	raw := map[string]any{}
	json.Unmarshal(data, &raw)
	entries := raw["entries"].(map[string]any)
	forced := map[string]string{}
	for k, v := range entries {
		e := v.(map[string]any)
		var other string
		for _, c := range e["candidates"].([]any) {
			if c != e["tactic"] && other == "" {
				other = c.(string)
			}
		}
		e["tactic"] = other
		entries[k] = e
		forced[e["layer"].(string)] = other
	}
	data, _ = json.Marshal(raw)
	if err := os.WriteFile(cachePath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	logs = nil
	p2, _, err := builder.Build(m, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for _, l := range logs {
		switch l {
		case "%s: tactic %s (timing cache)":
			hits++
		case "%s: tactic %s %v":
			t.Errorf("the rebuild timed a tactic although the cache has every layer")
		}
	}
	if hits < len(forced) { // layers with equal signatures share an entry
		t.Errorf("%d timing cache hits for %d entries", hits, len(forced))
	}
	t1, t2 := tactics(p1), tactics(p2)
	for layer, tac := range forced {
		if t2[layer] != tac {
			t.Errorf("layer %q: rebuilt with %s, the cache says %s (first build: %s)", layer, t2[layer], tac, t1[layer])
		}
	}
	// Choices are per thread count: a build for another one times again.
	logs = nil
	cfg.Threads = runtime.GOMAXPROCS(0) + 1
	if _, _, err := builder.Build(m, nil, cfg); err != nil {
		t.Fatal(err)
	}
	timed := 0
	for _, l := range logs {
		if l == "%s: tactic %s %v" {
			timed++
		}
	}
	if timed == 0 {
		t.Fatal("a build at another thread count took every choice timed at the default")
	}
}
