package calib

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"
)

// Sidecar is the JSON file kept next to a calibration cache (<cache>.json)
// with what TensorRT's format has no room for, so that a stale cache is
// noticed instead of silently reused.
type Sidecar struct {
	Kiln        string                   `json:"kiln_version"`
	Created     string                   `json:"created"`
	ModelSHA256 string                   `json:"model_sha256"`
	DataSHA256  string                   `json:"data_sha256"`
	Batches     int                      `json:"batches"`
	BatchSize   int                      `json:"batch_size"`
	Algorithm   Algorithm                `json:"algorithm"`
	Params      Params                   `json:"params"`
	TRTVersion  string                   `json:"trt_version"`
	Tensors     map[string]SidecarTensor `json:"tensors"`
	Notes       []string                 `json:"notes,omitempty"`
}

// SidecarTensor keeps the observed extremes (for asymmetric uint8) and the
// chosen amax of one tensor.
type SidecarTensor struct {
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	Amax     float64 `json:"amax"`
	Fallback string  `json:"fallback,omitempty"`
}

// SidecarPath is where the sidecar of a cache lives.
func SidecarPath(cache string) string { return cache + ".json" }

// ReadSidecar reads a sidecar; it returns (nil, nil) when there is none.
func ReadSidecar(path string) (*Sidecar, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Sidecar
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Marshal encodes the sidecar as indented JSON. JSON has no infinities, so
// extremes of tensors that saw no finite value are written as 0.
func (s *Sidecar) Marshal() ([]byte, error) {
	for k, t := range s.Tensors {
		if math.IsInf(t.Min, 0) || math.IsNaN(t.Min) {
			t.Min = 0
		}
		if math.IsInf(t.Max, 0) || math.IsNaN(t.Max) {
			t.Max = 0
		}
		s.Tensors[k] = t
	}
	return json.MarshalIndent(s, "", "  ")
}

// Mismatches lists how an existing sidecar differs from what a new
// calibration would use: model, data (when known on both sides),
// algorithm and its parameters.
func (s *Sidecar) Mismatches(want *Sidecar) []string {
	var out []string
	if s.ModelSHA256 != want.ModelSHA256 {
		out = append(out, fmt.Sprintf("the model changed (sha256 %.12s…, cache made for %.12s…)", want.ModelSHA256, s.ModelSHA256))
	}
	if s.DataSHA256 != "" && want.DataSHA256 != "" && s.DataSHA256 != want.DataSHA256 {
		out = append(out, fmt.Sprintf("the calibration data changed (sha256 %.12s…, cache made from %.12s…)", want.DataSHA256, s.DataSHA256))
	}
	if s.Algorithm != want.Algorithm {
		out = append(out, fmt.Sprintf("the algorithm changed (%s, cache made with %s)", want.Algorithm, s.Algorithm))
	}
	if s.Params.withDefaults() != want.Params.withDefaults() {
		out = append(out, fmt.Sprintf("the calibrator parameters changed (%+v, cache made with %+v)", want.Params.withDefaults(), s.Params.withDefaults()))
	}
	return out
}

func newSidecar(kiln string, ranges []Range) *Sidecar {
	s := &Sidecar{Kiln: kiln, Created: time.Now().UTC().Format(time.RFC3339), Tensors: map[string]SidecarTensor{}}
	for _, r := range ranges {
		s.Tensors[r.Name] = SidecarTensor{Min: r.Min, Max: r.Max, Amax: r.Amax, Fallback: r.Fallback}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
